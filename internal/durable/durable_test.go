package durable

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func openT(t *testing.T, dir string) *Dir {
	t.Helper()
	d, err := OpenDir(dir, ".lock")
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func slot(b byte, size int) []byte { return bytes.Repeat([]byte{b}, size) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenDir_SecondOpenIsLocked(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock on this platform")
	}
	dir := filepath.Join(t.TempDir(), "new")
	d := openT(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory not created 0700: %v %v", fi, err)
	}
	if _, err := OpenDir(dir, ".lock"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenDir = %v, want ErrLocked", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, dir) // released by Close
}

// Each record goes over the slot that does not hold the current one, in
// place (same inode); a record of another slot size makes a new file.
func TestWriteSlot_AlternatesSlotsInPlace(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	path := filepath.Join(dir, "f")
	var s Slots
	if err := d.WriteSlot("f", "f.tmp", &s, slot('a', 8), false); err != nil {
		t.Fatal(err)
	}
	if s != (Slots{Size: 8, Seq: 1, Index: 0}) {
		t.Fatalf("after the first write: %+v", s)
	}
	if got, want := readFile(t, path), append(slot('a', 8), make([]byte, 8)...); !bytes.Equal(got, want) {
		t.Fatalf("new file %q, want %q", got, want)
	}
	before, _ := os.Stat(path)
	for i, c := range []struct {
		b     byte
		index int
		want  []byte
	}{
		{'b', 1, append(slot('a', 8), slot('b', 8)...)},
		{'c', 0, append(slot('c', 8), slot('b', 8)...)},
	} {
		if err := d.WriteSlot("f", "f.tmp", &s, slot(c.b, 8), false); err != nil {
			t.Fatal(err)
		}
		if s != (Slots{Size: 8, Seq: uint64(i + 2), Index: c.index}) {
			t.Fatalf("after write %d: %+v", i+2, s)
		}
		if got := readFile(t, path); !bytes.Equal(got, c.want) {
			t.Fatalf("after write %d: %q, want %q", i+2, got, c.want)
		}
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Fatal("an in-place write replaced the file")
	}
	if err := d.WriteSlot("f", "f.tmp", &s, slot('d', 16), false); err != nil {
		t.Fatal(err)
	}
	if s != (Slots{Size: 16, Seq: 4, Index: 0}) {
		t.Fatalf("after growing: %+v", s)
	}
	if got, want := readFile(t, path), append(slot('d', 16), make([]byte, 16)...); !bytes.Equal(got, want) {
		t.Fatalf("grown file %q, want %q", got, want)
	}
}

// A failed step returns its error and leaves the slot state as it was; a
// failure before the rename leaves the file and no temp file.
func TestWriteSlot_FailedStepLeavesState(t *testing.T) {
	injected := errors.New("injected")
	for _, c := range []struct {
		step    string
		inPlace bool
	}{
		{"write", true}, {"fsync", true},
		{"create", false}, {"write", false}, {"fsync", false}, {"rename", false}, {"dirsync", false},
	} {
		name := "NewFile/" + c.step
		if c.inPlace {
			name = "InPlace/" + c.step
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d := openT(t, dir)
			var s Slots
			if err := d.WriteSlot("f", "f.tmp", &s, slot('a', 8), true); err != nil {
				t.Fatal(err)
			}
			size := 8
			if !c.inPlace {
				size = 16
			}
			old, want := s, readFile(t, filepath.Join(dir, "f"))
			d.Step = func(name string) error {
				if name == c.step {
					return injected
				}
				return nil
			}
			if err := d.WriteSlot("f", "f.tmp", &s, slot('b', size), true); !errors.Is(err, injected) {
				t.Fatalf("WriteSlot = %v, want the injected error", err)
			}
			if s != old {
				t.Fatalf("slots moved to %+v after a failed write", s)
			}
			if c.step == "dirsync" || c.step == "fsync" && c.inPlace {
				return // written, not known to be durable
			}
			if got := readFile(t, filepath.Join(dir, "f")); !bytes.Equal(got, want) {
				t.Fatalf("file changed by a failed write: %q", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "f.tmp")); !os.IsNotExist(err) {
				t.Fatalf("temp file left behind: %v", err)
			}
		})
	}
}

// Replace with swap leaves the previous file under the temp name where the
// exchange is supported, and a shorter record written over that longer
// temp file is exactly the new record; without swap (or NoExchange) the
// temp file is renamed away.
func TestReplace_SwapAndPlainRename(t *testing.T) {
	for _, c := range []struct {
		name             string
		swap, noExchange bool
		tmpMayStay       bool
	}{
		{"Swap", true, false, true},
		{"SwapNoExchange", true, true, false},
		{"Plain", false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d := openT(t, dir)
			d.NoExchange.Store(c.noExchange)
			for _, data := range []string{"first, the longest record", "second record", "third"} {
				if err := d.Replace("f", "f.tmp", []byte(data), c.swap); err != nil {
					t.Fatal(err)
				}
				if got := readFile(t, filepath.Join(dir, "f")); string(got) != data {
					t.Fatalf("file holds %q, want %q", got, data)
				}
			}
			_, err := os.Stat(filepath.Join(dir, "f.tmp"))
			if !c.tmpMayStay && !os.IsNotExist(err) {
				t.Fatalf("temp file left after a plain rename: %v", err)
			}
		})
	}
}

func TestProbe_LeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	if err := d.Probe(".probe-"); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 || des[0].Name() != ".lock" {
		t.Fatalf("directory after Probe: %v, want only .lock", des)
	}
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if os.Getuid() != 0 {
		if err := d.Probe(".probe-"); err == nil {
			t.Fatal("Probe of a read-only directory succeeded")
		}
	}
}

func TestURLDir_OnlyAbsoluteLocalPaths(t *testing.T) {
	for _, c := range []struct {
		url, dir string
	}{
		{"file:///var/lib/keyward", "/var/lib/keyward"},
		{"file://localhost/var/lib/keyward", "/var/lib/keyward"},
		{"file://db.internal/var/lib/keyward", ""},
		{"file:relative/dir", ""},
		{"file:///var/lib/keyward?x=1", ""},
		{"file:///var/lib/keyward#frag", ""},
		{"file://user@/var/lib/keyward", ""},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := URLDir(u)
		if dir != c.dir || (err == nil) != (c.dir != "") {
			t.Errorf("URLDir(%s) = %q, %v; want %q", c.url, dir, err, c.dir)
		}
	}
}
