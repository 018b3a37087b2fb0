package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/audit"
)

// writeLines opens path, logs n records and closes it.
func writeLines(t *testing.T, path string, n int, opts audit.FileOptions) {
	t.Helper()
	a, err := audit.OpenFileWith(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := a.Log(context.Background(), sample()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	return lines[:len(lines)-1]
}

func anchorOf(t *testing.T, path string) *audit.Anchor {
	t.Helper()
	a, err := audit.ReadAnchor(path)
	if err != nil || a == nil {
		t.Fatalf("anchor: %v %v", a, err)
	}
	return a
}

func TestFile_AnchorRecordsTheLastLineOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLines(t, path, 3, audit.FileOptions{})
	lines := fileLines(t, path)
	a := anchorOf(t, path)
	st, _ := os.Stat(path)
	if a.Lines != 3 || a.Size != st.Size() || a.Hash != sha256.Sum256(bytes.TrimSuffix(lines[2], []byte("\n"))) {
		t.Fatalf("anchor %+v for a file of 3 lines, %d bytes", a, st.Size())
	}
	if fi, _ := os.Stat(audit.AnchorPath(path)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("anchor mode %v", fi.Mode().Perm())
	}
	rep, err := audit.VerifyFile(path)
	if err != nil || rep.Lines != 3 || rep.Anchor == nil || len(rep.Breaks) != 0 {
		t.Fatalf("VerifyFile: %+v %v", rep, err)
	}
}

// With audit_sync: always the anchor moves with every write, before Log
// returns; without it, within the anchor interval.
func TestFile_AnchorFollowsWrites(t *testing.T) {
	for _, opts := range []audit.FileOptions{{Sync: true}, {AnchorInterval: 5 * time.Millisecond}} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		a, err := audit.OpenFileWith(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			if err := a.Log(context.Background(), sample()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				got, _ := audit.ReadAnchor(path)
				if got != nil && got.Lines == int64(i) {
					break
				}
				if opts.Sync || time.Now().After(deadline) {
					t.Fatalf("sync %v: anchor %+v after %d lines", opts.Sync, got, i)
				}
				time.Sleep(time.Millisecond)
			}
		}
		a.Close()
	}
}

// Finding 4 of issue 14: removing or editing the last line of the audit
// log went unnoticed by verify and by the daemon. VerifyFile reports the
// missing or edited tail; OpenFile records a chain break that links the old
// head, continues the chain from what is there, and re-anchors.
func TestFile_RemovedOrEditedTailIsReportedAndRecorded(t *testing.T) {
	for name, damage := range map[string]func(lines [][]byte) [][]byte{
		"last line removed": func(l [][]byte) [][]byte { return l[:len(l)-1] },
		"two lines removed": func(l [][]byte) [][]byte { return l[:len(l)-2] },
		"file emptied":      func(l [][]byte) [][]byte { return nil },
		"last line edited": func(l [][]byte) [][]byte {
			l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte(`"refused"`), []byte(`"signed"`), 1)
			return l
		},
		"last line replaced by a longer one": func(l [][]byte) [][]byte {
			l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte(`"baker"`), []byte(`"another-baker"`), 1)
			return l
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			writeLines(t, path, 5, audit.FileOptions{})
			old := *anchorOf(t, path)
			kept := damage(fileLines(t, path))
			os.WriteFile(path, bytes.Join(kept, nil), 0o600)

			rep, err := audit.VerifyFile(path)
			var te *audit.TailError
			if !errors.As(err, &te) || te.Anchor != old {
				t.Fatalf("VerifyFile of a damaged tail: %+v, %v", rep, err)
			}
			if len(kept) < 5 && !strings.Contains(err.Error(), "removed from the end") {
				t.Errorf("error does not say lines were removed: %v", err)
			}

			a, err := audit.OpenFileWith(path, audit.FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Break == nil || a.Break.Anchor != old || a.Break.Lines != int64(len(kept)) {
				t.Fatalf("Break = %+v, want the old anchor and %d lines", a.Break, len(kept))
			}
			if err := a.Log(context.Background(), sample()); err != nil { // it keeps logging
				t.Fatal(err)
			}
			a.Close()
			lines := fileLines(t, path)
			if len(lines) != len(kept)+2 {
				t.Fatalf("%d lines, want the %d kept, the break record and one more", len(lines), len(kept))
			}
			var rec audit.Record
			if err := json.Unmarshal(lines[len(kept)], &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Event != audit.EventChainBreak || rec.AnchorLines != 5 || rec.AnchorHash != hex.EncodeToString(old.Hash[:]) || rec.Outcome != audit.Failed || rec.Reason == "" {
				t.Fatalf("chain-break record %+v", rec)
			}
			rep, err = audit.VerifyFile(path)
			if err != nil || rep.Lines != len(kept)+2 || len(rep.Breaks) != 1 || rep.Breaks[0].Line != len(kept)+1 || rep.Breaks[0].AnchorLines != 5 {
				t.Fatalf("VerifyFile after the recorded break: %+v, %v", rep, err)
			}
			if a2 := anchorOf(t, path); a2.Lines != int64(len(lines)) {
				t.Fatalf("anchor %+v not moved past the break", a2)
			}
		})
	}
}

func TestFile_AnchorRemovedOrUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLines(t, path, 2, audit.FileOptions{})
	os.Remove(audit.AnchorPath(path))
	if rep, err := audit.VerifyFile(path); err != nil || rep.Anchor != nil {
		t.Fatalf("without an anchor: %+v %v", rep, err)
	}
	a, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Unanchored || a.Break != nil {
		t.Fatalf("Unanchored %v Break %v", a.Unanchored, a.Break)
	}
	a.Close()
	if anchorOf(t, path).Lines != 2 {
		t.Fatal("the anchor was not started from the file")
	}
	os.WriteFile(audit.AnchorPath(path), []byte("garbage"), 0o600)
	if _, err := audit.VerifyFile(path); !errors.Is(err, audit.ErrBadAnchor) {
		t.Fatalf("VerifyFile with a garbage anchor: %v", err)
	}
	a, err = audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Break == nil || !strings.Contains(a.Break.Reason, "unreadable") {
		t.Fatalf("garbage anchor: Break = %+v", a.Break)
	}
	a.Close()
	if rep, err := audit.VerifyFile(path); err != nil || len(rep.Breaks) != 1 || rep.Lines != 3 {
		t.Fatalf("after the break: %+v %v", rep, err)
	}
}

// A torn anchor write spoils one slot; the other still holds the anchor
// before it, which the file satisfies.
func TestFile_TornAnchorSlotFallsBackToTheOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLines(t, path, 2, audit.FileOptions{})
	writeLines(t, path, 1, audit.FileOptions{}) // the anchor's second slot: 3 lines
	data, _ := os.ReadFile(audit.AnchorPath(path))
	if a := anchorOf(t, path); a.Lines != 3 {
		t.Fatalf("anchor %+v", a)
	}
	half := len(data) / 2
	for i := half + 20; i < half+40; i++ { // tear the newer slot
		data[i] ^= 0xff
	}
	os.WriteFile(audit.AnchorPath(path), data, 0o600)
	if a := anchorOf(t, path); a.Lines != 2 {
		t.Fatalf("anchor after a torn slot %+v, want the older one (2 lines)", a)
	}
	a, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Break != nil {
		t.Fatalf("a torn anchor slot made a break: %v", a.Break)
	}
}

// The cost of audit_sync: always: every line fdatasync'd and anchored
// before Log returns, against write(2) only. Run:
//
//	go test -run '^$' -bench 'File_Log' ./audit
//
// (on the disk the daemon will use: KEYWARD_BENCH_DIR=/var/log/keyward).
func BenchmarkFile_LogSync(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts audit.FileOptions
	}{{"default", audit.FileOptions{}}, {"audit_sync=always", audit.FileOptions{Sync: true}}} {
		for _, par := range []bool{false, true} {
			name := tc.name + "/serial"
			if par {
				name = tc.name + "/parallel16"
			}
			b.Run(name, func(b *testing.B) {
				a, err := audit.OpenFileWith(filepath.Join(benchDir(b), "audit.jsonl"), tc.opts)
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
				b.ReportAllocs()
				if !par {
					for i := 0; i < b.N; i++ {
						if err := a.Log(context.Background(), sample()); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := a.Log(context.Background(), sample()); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("KEYWARD_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "auditbench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}
