package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/limits/internal/ledger"
	"github.com/keyward/keyward/limits/limitstest"
	"github.com/keyward/keyward/watermark"
	_ "github.com/keyward/keyward/watermark/file"
)

var bg = context.Background()

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// breakDir replaces the store's directory by a file until restore: every
// write fails, as when the disk or mount is gone (works as root too).
func breakDir(t *testing.T, dir string) (restore func()) {
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.Remove(dir)
		if err := os.Rename(dir+".moved", dir); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	limitstest.Run(t, limitstest.Harness{
		Open: func(t *testing.T) limits.Store { return openT(t, t.TempDir()) },
		Reopen: func(t *testing.T, old limits.Store) limits.Store {
			dir := old.(*Store).Dir()
			old.Close()
			return openT(t, dir)
		},
		Break: func(t *testing.T, s limits.Store) func() { return breakDir(t, s.(*Store).Dir()) },
	})
}

var hour = []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 5, MaxAmount: big.NewInt(100)}}

func one(amount int64) limits.Spend { return limits.Spend{Amount: big.NewInt(amount), Requests: 1} }

// The budgets live in the limits subdirectory of the watermark directory,
// opened from the same URL; both stores open side by side.
func TestOpenURL_BesideTheWatermarks(t *testing.T) {
	dir := t.TempDir()
	u := "file://" + dir
	wm, err := watermark.Open(bg, u)
	if err != nil {
		t.Fatal(err)
	}
	defer wm.Close()
	s, err := limits.Open(bg, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Debit(bg, "k", hour, one(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := s.(*Store).Dir(); got != filepath.Join(dir, Subdir) {
		t.Fatalf("budgets in %s", got)
	}
	s.Close()
	// The watermark store still opens the directory with the budgets in it.
	wm.Close()
	if wm, err = watermark.Open(bg, u); err != nil {
		t.Fatalf("watermark store beside the budgets: %v", err)
	}
	wm.Close()
	for _, bad := range []string{"file://host/x", "file:relative", "file:///x?y=1", "file:///x#f"} {
		if _, err := limits.Open(bg, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := limits.Open(bg, "ftp:///x"); err == nil {
		t.Error("unknown scheme accepted")
	}
}

func TestOpen_SecondOpenOfSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

// A damaged or misplaced file stops the store from opening: it would
// otherwise forget what was spent. Stale temp files are removed.
func TestOpen_CorruptFileFails(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.Debit(bg, "k", hour, one(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	name := filepath.Join(dir, baseName("k")+fileSuffix)
	good, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, baseName("k")+tmpSuffix), []byte("half a write"), 0o600)
	s = openT(t, dir)
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, baseName("k")+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatalf("stale temp file kept: %v", err)
	}
	for what, data := range map[string][]byte{
		"flipped byte": append([]byte{good[0] ^ 1}, good[1:]...),
		"truncated":    good[:len(good)-5],
		"empty":        {},
	} {
		os.WriteFile(name, data, 0o600)
		if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", what, err)
		}
	}
	os.WriteFile(name, good, 0o600)
	os.Rename(name, filepath.Join(dir, baseName("other")+fileSuffix))
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("misplaced file: Open = %v, want ErrCorrupt", err)
	}
}

// A write that fails at any step changes nothing in memory and is reported
// as the store unavailable; the disk never counts less than memory, except
// for a credit whose write reached the file before the flush failed (the
// debit it gives back was not signed).
func TestWrite_FailedStepChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		step    string
		inPlace bool // the key's file exists: its slot is written in place
		written bool // the failure comes after the new state reached the file
	}{
		{"write", true, false}, {"fsync", true, true},
		{"create", false, false}, {"write", false, false}, {"fsync", false, false}, {"rename", false, false}, {"dirsync", false, true},
	} {
		name := tc.step + map[bool]string{true: " in place", false: " new file"}[tc.inPlace]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			now := time.Now()
			d, err := s.Debit(bg, "k", hour, one(60), now)
			if err != nil {
				t.Fatal(err)
			}
			key, before := "k", int64(60)
			if !tc.inPlace {
				key, before = "new", 0
			}
			fail := func(s *Store) {
				s.failAt = func(name string) error {
					if name == tc.step {
						return errors.New("injected failure at " + name)
					}
					return nil
				}
			}
			spent := func(s *Store, key string) int64 {
				us, err := s.Usage(bg, key, hour, now)
				if err != nil {
					t.Fatal(err)
				}
				return us[0].Spent.Int64()
			}
			fail(s)
			if _, err := s.Debit(bg, key, hour, one(40), now); !errors.Is(err, limits.ErrUnavailable) {
				t.Fatalf("Debit = %v, want ErrUnavailable", err)
			}
			if got := spent(s, key); got != before {
				t.Fatalf("memory counts %d after a failed debit, want %d", got, before)
			}
			s.Close()
			s = openT(t, dir)
			if got := spent(s, key); got != before && !(tc.written && got == before+40) {
				t.Fatalf("disk counts %d after a failed debit", got)
			}
			if !tc.inPlace {
				return
			}
			s.Close()
			os.WriteFile(filepath.Join(dir, baseName("k")+fileSuffix), mustEncode(t, "k", 60, now), 0o600)
			s = openT(t, dir)
			fail(s)
			if err := s.Credit(bg, d); !errors.Is(err, limits.ErrUnavailable) {
				t.Fatalf("Credit = %v, want ErrUnavailable", err)
			}
			if got := spent(s, "k"); got != 60 {
				t.Fatalf("memory counts %d after a failed credit, want 60", got)
			}
			s.Close()
			s = openT(t, dir)
			if got := spent(s, "k"); got != 60 && !(tc.written && got == 0) {
				t.Fatalf("disk counts %d after a failed credit", got)
			}
		})
	}
}

// mustEncode is the file of key with one debit of amount at now.
func mustEncode(t testing.TB, key string, amount int64, now time.Time) []byte {
	t.Helper()
	st := ledger.New(key)
	if _, err := st.Debit(hour, one(amount), now); err != nil {
		t.Fatal(err)
	}
	body, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	size := slotSizeFor(body)
	return append(encodeSlot(1, body, size), make([]byte, size)...)
}

// A torn slot write (a crash before fdatasync returned) leaves the other
// slot's state; a state that outgrows its slots moves to a larger file.
func TestSlots_TornWriteAndGrowth(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	now := time.Now()
	for i := 1; i <= 3; i++ {
		if _, err := s.Debit(bg, "k", hour, one(10), now); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, baseName("k")+fileSuffix)
	data, _ := os.ReadFile(path)
	st, seq, slot, size, err := decodeSlots(data)
	if err != nil || seq != 3 || slot != 0 || size != pageSize {
		t.Fatalf("seq %d slot %d size %d: %v", seq, slot, size, err)
	}
	us := st.Usage(hour, now)
	if us[0].Spent.Int64() != 30 {
		t.Fatalf("%+v", us)
	}
	// Tear the newest slot: the state of seq 2 (20 spent) is read back.
	data[slotHeader+5] ^= 0xff
	os.WriteFile(path, data, 0o600)
	s = openT(t, dir)
	if got := func() int64 { us, _ := s.Usage(bg, "k", hour, now); return us[0].Spent.Int64() }(); got != 20 {
		t.Fatalf("after a torn write %d spent, want 20", got)
	}
	// Many tokens make the state outgrow one page: the file grows.
	big1 := map[string]*big.Int{}
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxTokens: map[string]*big.Int{}}}
	for i := 0; i < 300; i++ {
		tok := fmt.Sprintf("KT1token%03d%s", i, strings.Repeat("x", 20))
		ls[0].MaxTokens[tok] = big.NewInt(1000)
		big1[tok] = big.NewInt(1)
	}
	if _, err := s.Debit(bg, "k", ls, limits.Spend{Requests: 1, Tokens: big1}, now); err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, _ = os.ReadFile(path)
	if _, _, _, size, err := decodeSlots(data); err != nil || size <= pageSize {
		t.Fatalf("size %d: %v", size, err)
	}
	s = openT(t, dir)
	if _, err := s.Debit(bg, "k", ls, limits.Spend{Requests: 1, Tokens: map[string]*big.Int{"KT1token000" + strings.Repeat("x", 20): big.NewInt(1000)}}, now); !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("token budget after growth: %v", err)
	}
}

// TestHelperDebitLoop is the child process of TestDebit_SurvivesSIGKILL.
func TestHelperDebitLoop(t *testing.T) {
	dir := os.Getenv("KEYWARD_LIMITS_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 1 << 40}}
	for i := 1; ; i++ {
		if _, err := s.Debit(bg, "k", ls, limits.Spend{Requests: 1}, time.Now()); err != nil {
			fmt.Println("debit:", err)
			os.Exit(1)
		}
		fmt.Println("debited", i)
	}
}

// Every debit acknowledged before the process is killed with SIGKILL is
// counted after a restart.
func TestDebit_SurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDebitLoop$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KEYWARD_LIMITS_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := 0
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "debited "); ok {
			acked, _ = strconv.Atoi(n)
			if acked == 30 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		} else {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "debited "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	cmd.Wait()
	if acked < 30 {
		t.Fatalf("helper acknowledged only %d debits", acked)
	}
	s := openT(t, dir)
	us, err := s.Usage(bg, "k", []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 1 << 40}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := us[0].Spent.Int64(); got < int64(acked) || got > int64(acked)+1 {
		t.Fatalf("%d requests counted after SIGKILL, %d were acknowledged", got, acked)
	}
}

func BenchmarkDebit_File(b *testing.B) {
	s := openT(b, b.TempDir())
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: 24 * time.Hour, MaxRequests: 1 << 40, MaxAmount: new(big.Int).Lsh(big.NewInt(1), 200)}}
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Debit(bg, "k", ls, one(1), now); err != nil {
			b.Fatal(err)
		}
	}
}

// Budget files are read back at every start: whatever their bytes, decoding
// fails with ErrCorrupt or gives a state that encodes again.
func FuzzDecodeSlots(f *testing.F) {
	f.Add(mustEncode(f, "k", 1, time.Unix(1_750_000_000, 0)))
	f.Add(make([]byte, 2*pageSize))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, slot, size, err := decodeSlots(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if slot < 0 || slot > 1 || size*2 != len(data) {
			t.Fatalf("slot %d size %d of %d bytes", slot, size, len(data))
		}
		if _, err := st.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}
