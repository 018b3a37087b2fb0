package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is a keyward process started by a test.
type Daemon struct {
	Cmd      *exec.Cmd
	TezosURL string // http://127.0.0.1:PORT
	Config   string
	mu       sync.Mutex
	out      bytes.Buffer
	done     chan struct{}
}

type lockedWriter struct{ d *Daemon }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.out.Write(p)
}

// Output returns what the daemon wrote so far.
func (d *Daemon) Output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// WriteConfig writes a config file into dir and returns its path.
func WriteConfig(t testing.TB, dir, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, "keyward.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartKeyward runs `keyward serve --config cfg` and waits until tezosAddr
// answers. The process is stopped when the test ends. env entries are added
// to the environment.
func StartKeyward(t testing.TB, cfg, tezosAddr string, env ...string) *Daemon {
	t.Helper()
	d, err := TryStartKeyward(t, cfg, tezosAddr, env...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TryStartKeyward is StartKeyward returning the start-up error (with the
// daemon's output) instead of failing the test.
func TryStartKeyward(t testing.TB, cfg, tezosAddr string, env ...string) (*Daemon, error) {
	t.Helper()
	d, err := StartKeywardWait(t, cfg, func() bool {
		resp, err := http.Get("http://" + tezosAddr + "/authorized_keys")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, env...)
	if d != nil {
		d.TezosURL = "http://" + tezosAddr
	}
	return d, err
}

// StartKeywardWait runs `keyward serve --config cfg` and polls ready until it
// returns true (30 s at most).
func StartKeywardWait(t testing.TB, cfg string, ready func() bool, env ...string) (*Daemon, error) {
	t.Helper()
	bin := Keyward(t)
	d := &Daemon{Config: cfg, done: make(chan struct{})}
	d.Cmd = exec.Command(bin, "serve", "--config", cfg)
	d.Cmd.Env = append(os.Environ(), env...)
	d.Cmd.Stdout = lockedWriter{d}
	d.Cmd.Stderr = lockedWriter{d}
	if err := d.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.Cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.Stop() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return nil, fmt.Errorf("keyward exited during start-up: %s", d.Output())
		default:
		}
		if ready() {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Stop()
	return nil, fmt.Errorf("keyward did not become ready: %s", d.Output())
}

// Stop sends SIGTERM and waits (SIGKILL after 10 s).
func (d *Daemon) Stop() {
	if d.Cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-d.done
	}
}

// Kill sends SIGKILL and waits.
func (d *Daemon) Kill() {
	_ = d.Cmd.Process.Kill()
	<-d.done
}

// Done is closed when the process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Run runs the keyward binary with args and returns its combined output.
func Run(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Keyward(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
