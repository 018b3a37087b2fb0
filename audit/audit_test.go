package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/internal/testutil"
)

// plain has Record's fields and tags but not its MarshalJSON, so
// encoding/json encodes it by reflection.
type plain audit.Record

func reflectJSON(t testing.TB, r *audit.Record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode((*plain)(r)); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func sample() *audit.Record {
	l, r := int64(7), int64(0)
	return &audit.Record{
		Time: time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC), Chain: "tezos", Client: "127.0.0.1:5555",
		Auth: "tz1abc cert:CN=x", Key: "baker", Address: "tz2…", Kind: "attestation", ChainID: "NetXdQprcVkpaWU",
		Level: &l, Round: &r, Operations: []string{"transaction", "reveal"}, Digest: "ab", Outcome: audit.Refused,
		Status: 409, Rule: "watermark", Reason: "level 7 <\"quoted\">\n\t\x01 \u2028 & \xff", Count: 3, Prev: "00",
	}
}

func TestRecord_MarshalJSONMatchesEncodingJSON(t *testing.T) {
	for _, r := range []*audit.Record{sample(), {Chain: "ethereum", Outcome: audit.Signed}, {Time: time.Unix(0, 1).UTC(), Outcome: audit.Failed, Operations: []string{}},
		{Event: audit.EventChainBreak, Outcome: audit.Failed, Reason: "lines removed", AnchorLines: 59, AnchorHash: "ab12", Prev: "cd"}} {
		got, _ := r.MarshalJSON()
		if want := reflectJSON(t, r); !bytes.Equal(got, want) {
			t.Errorf("MarshalJSON:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add("tezos", "baker", "reason \"x\"\n", int64(5), 409, "")
	f.Add("\xff\xfe", "\u2028", "<>&", int64(-1), -32000, "\x00")
	f.Fuzz(func(t *testing.T, chain, key, reason string, level int64, status int, payload string) {
		r := &audit.Record{Time: time.Unix(level, 0).UTC(), Chain: chain, Key: key, Reason: reason, Level: &level, Status: status, Payload: payload, Outcome: audit.Signed}
		if r.Time.Year() < 0 || r.Time.Year() > 9999 {
			return
		}
		got, _ := r.MarshalJSON()
		if want := reflectJSON(t, r); !bytes.Equal(got, want) {
			t.Fatalf("MarshalJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func verifyFile(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil {
		t.Fatalf("verify after %d lines: %v", n, err)
	}
	return n
}

func TestFile_ConcurrentLinesChainInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if err := a.Log(context.Background(), &audit.Record{Chain: "tezos", Outcome: audit.Signed}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := verifyFile(t, path); n != 16*200 {
		t.Fatalf("%d lines, want %d", n, 16*200)
	}
	// Reopened, the chain continues.
	a, err = audit.OpenFileWith(path, audit.FileOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Log(context.Background(), &audit.Record{Chain: "tezos", Outcome: audit.Signed}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if n := verifyFile(t, path); n != 16*200+1 {
		t.Fatalf("%d lines after reopening, want %d", n, 16*200+1)
	}
}

// A full disk fails the lines that do not fit and leaves no fragment: once
// space returns, the next line links to the last complete one.
func TestFile_FullDiskLeavesNoPartialLine(t *testing.T) {
	mnt := testutil.TinyTmpfs(t, "16k")
	path := filepath.Join(mnt, "audit.jsonl")
	a, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	filler := filepath.Join(mnt, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	// Leave room for a few lines, then fill the disk.
	if err := a.Log(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	_, _ = fill.Write(make([]byte, 14<<10))
	fill.Close()
	failed := 0
	for i := 0; i < 50; i++ {
		r := sample()
		r.Reason = strings.Repeat("x", 200)
		if err := a.Log(context.Background(), r); err != nil {
			if !errors.Is(err, audit.ErrUnavailable) {
				t.Fatalf("error %v does not wrap ErrUnavailable", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the disk never filled")
	}
	data, _ := os.ReadFile(path)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("partial line left in the file: %q", data[bytes.LastIndexByte(data, '\n')+1:])
	}
	// Space returns: the chain goes on and verifies.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := a.Log(context.Background(), sample()); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	verifyFile(t, path)
}

func TestOpenFile_CutsOffTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, _ := audit.OpenFile(path)
	_ = a.Log(context.Background(), sample())
	a.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	f.WriteString(`{"time":"2026-`)
	f.Close()
	a, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.TruncatedTail != int64(len(`{"time":"2026-`)) {
		t.Errorf("TruncatedTail = %d", a.TruncatedTail)
	}
	_ = a.Log(context.Background(), sample())
	a.Close()
	if n := verifyFile(t, path); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
}

func BenchmarkFile_Log(b *testing.B) {
	a, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := sample()
			if err := a.Log(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
