package fscheck

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
)

func TestDirAndFile_RefuseWhatCannotBeWritten(t *testing.T) {
	root := t.TempDir()
	ro := filepath.Join(root, "ro")
	os.Mkdir(ro, 0o700)
	file := filepath.Join(ro, "f")
	os.WriteFile(file, nil, 0o600)
	testutil.ReadOnlyDir(t, ro)
	if os.Geteuid() == 0 {
		// chattr +i on the directory leaves its files writable.
		testutil.ReadOnlyDir(t, file)
	} else {
		os.Chmod(file, 0o400)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"read-only dir", Dir(ro)},
		{"missing dir under a read-only one", Dir(filepath.Join(ro, "a", "b"))},
		{"a file where a dir should be", Dir(file)},
		{"read-only file", File(file)},
		{"new file in a read-only dir", File(filepath.Join(ro, "audit.jsonl"))},
	} {
		if !errors.Is(tc.err, ErrNotWritable) {
			t.Errorf("%s: err = %v, want ErrNotWritable", tc.name, tc.err)
		}
	}
}

func TestDirAndFile_AcceptWhatCanBeWritten(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), nil, 0o600)
	for name, err := range map[string]error{
		"dir":                 Dir(root),
		"missing nested dirs": Dir(filepath.Join(root, "a", "b", "c")),
		"file":                File(filepath.Join(root, "f")),
		"new file":            File(filepath.Join(root, "new")),
		"new file, new dir":   File(filepath.Join(root, "x", "new")),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a")); err == nil {
		t.Fatal("Dir created the directory")
	}
}
