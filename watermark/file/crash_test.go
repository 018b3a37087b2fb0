package file

import (
	"bufio"
	"os"
	"strconv"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
)

// TestCrash_KilledProcessKeepsAcknowledgedMarks runs a child process that
// advances and signs levels as fast as it can, reporting each acknowledged
// level, kills it with SIGKILL mid-stream, and reopens the directory: it
// must open cleanly (a leftover temp file is not corruption) with a mark at
// or above the last acknowledged level, and refuse that level with another payload.
func TestCrash_KilledProcessKeepsAcknowledgedMarks(t *testing.T) {
	if dir := os.Getenv("KEYWARD_WM_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd, sc := testutil.RerunTest(t, "TestCrash_KilledProcessKeepsAcknowledgedMarks", "KEYWARD_WM_CRASH_CHILD="+dir)
		var last int64 = -1
		for sc.Scan() && last < int64(20+15*round) {
			if v, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				last = v
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if last < 0 {
			t.Fatal("child acknowledged nothing")
		}
		s := openT(t, dir)
		es, err := s.Marks(bg)
		if err != nil || len(es) != 1 {
			t.Fatalf("Marks after crash = %v, %v; want one mark", es, err)
		}
		if m := es[0].Mark; m.Level < last {
			t.Fatalf("mark after crash at level %d, below the acknowledged level %d", m.Level, last)
		}
		if _, err := s.Advance(bg, testI, last, 0, dg("another payload")); err == nil {
			t.Fatalf("level %d signed again after the crash", last)
		}
		s.Close()
	}
}

func crashChild(dir string) {
	s, err := Open(dir)
	if err != nil {
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	for l := int64(0); ; l++ {
		d := dg(strconv.FormatInt(l, 10))
		if _, err := s.Advance(bg, testI, l, 0, d); err != nil {
			os.Exit(4)
		}
		w.WriteString(strconv.FormatInt(l, 10) + "\n")
		w.Flush()
		s.SetSignature(bg, testI, l, 0, d, d)
	}
}
