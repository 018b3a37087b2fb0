// Package testutil holds helpers shared by keyward's integration tests: finding components, building the binary, free ports.
package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// component is a failure, not a skip.
func InCI() bool { v := os.Getenv("CI"); return v == "true" || v == "1" }

// Need skips the test when a component is missing, or fails it under CI.
func Need(t testing.TB, component string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("required component %s missing under CI: %v", component, err)
	}
	t.Skipf("component %s missing (%v); run `make test` to install it", component, err)
}

// LookPath finds a program or calls Need.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, name, err)
	return p
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Keyward builds ./cmd/keyward once per test binary and returns its path.
// Set KEYWARD_BIN to use a prebuilt binary instead.
func Keyward(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYWARD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "keyward")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/keyward")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			buildPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/keyward: %v\n%s", buildErr, buildPath)
	}
	return buildPath
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns "127.0.0.1:<free port>".
func Addr(t testing.TB) string { return "127.0.0.1:" + strconv.Itoa(FreePort(t)) }

// TinyTmpfs mounts a tmpfs of the given size (e.g. "16k") in a temporary
// directory and unmounts it when the test ends: a disk that fills up.
// Root on Linux only; a skip elsewhere, and a failure under CI=true.
func TinyTmpfs(t *testing.T, size string) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		Need(t, "root on Linux (to mount a tiny tmpfs)", errors.New("not root on Linux"))
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		Need(t, "mount -t tmpfs", fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)))
	}
	// Registered after TempDir's cleanup, so it runs before it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// NodeScript runs `node script args...` in test/<dir> and returns its
// standard output. The npm package module must be installed there (npm ci);
// a missing node or package skips the test, or fails it under CI.
func NodeScript(t testing.TB, dir, module, script string, args ...string) []byte {
	t.Helper()
	node := LookPath(t, "node")
	jsDir := filepath.Join(RepoRoot(), "test", dir)
	_, err := os.Stat(filepath.Join(jsDir, "node_modules", module, "package.json"))
	Need(t, "npm package "+module+" in test/"+dir+" (npm ci)", err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = jsDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %s in test/%s: %v\n%s", script, strings.Join(args, " "), dir, err, stderr.String())
	}
	return out
}

// RunJS is NodeScript for a script that prints one JSON object, decoded.
func RunJS(t testing.TB, dir, module, script string, args ...string) map[string]any {
	t.Helper()
	out := NodeScript(t, dir, module, script, args...)
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s output %q: %v", script, out, err)
	}
	return res
}

// ReadOnlyDir makes dir refuse new files for this process until the test
// ends: mode 0500 for an ordinary user, the immutable attribute (chattr +i)
// for root, whom permission bits do not stop. Missing chattr is a skip, a
// failure under CI=true.
func ReadOnlyDir(t testing.TB, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	chattr := LookPath(t, "chattr")
	if out, err := exec.Command(chattr, "+i", dir).CombinedOutput(); err != nil {
		Need(t, "chattr +i (root without CAP_LINUX_IMMUTABLE?)", fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(chattr, "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", dir, err, out)
		}
	})
}
