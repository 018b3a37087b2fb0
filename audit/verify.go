package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// BrokenLinkError reports the first line whose prev does not match the line before it.
type BrokenLinkError struct {
	Line   int // 1-based
	Reason string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit chain broken at line %d: %s", e.Line, e.Reason)
}

// TailError reports a file that does not hold the line its anchor
// recorded: lines removed from the end (Lines < Anchor.Lines), or the
// anchored line edited or replaced.
type TailError struct {
	Anchor Anchor
	Lines  int // lines the file holds
}

func (e *TailError) Error() string {
	if int64(e.Lines) < e.Anchor.Lines {
		return fmt.Sprintf("audit tail missing: the anchor records %d lines, the file holds %d (%d removed from the end)", e.Anchor.Lines, e.Lines, e.Anchor.Lines-int64(e.Lines))
	}
	return fmt.Sprintf("audit tail edited: line %d is not the line the anchor records (sha256 %.16s…)", e.Anchor.Lines, hex.EncodeToString(e.Anchor.Hash[:]))
}

// RecordedBreak is a chain-break record keyward wrote on finding a file's
// tail missing or edited at start.
type RecordedBreak struct {
	Line        int   // the record's line
	AnchorLines int64 // lines the anchor had recorded then (0: the anchor was unreadable)
	Reason      string
}

// Report is what VerifyFile found in a file whose chain links.
type Report struct {
	Lines  int
	Anchor *Anchor // nil: the file has no anchor, so a removed tail cannot be detected
	Breaks []RecordedBreak
}

// Verify reads an audit stream and checks every link. It returns the number
// of lines checked and a *BrokenLinkError at the first broken or missing link.
func Verify(r io.Reader) (int, error) {
	rep, err := verify(r, nil)
	return rep.Lines, err
}

// VerifyFile checks the chain of the audit file at path and its tail
// against the anchor (AnchorPath), read first, so that lines a running
// keyward appends meanwhile only follow the anchored one. Broken links are a
// *BrokenLinkError, a missing or edited tail a *TailError; chain-break
// records keyward wrote are listed in the report.
func VerifyFile(path string) (*Report, error) {
	anchor, err := ReadAnchor(path)
	if err != nil {
		return &Report{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return &Report{}, err
	}
	defer f.Close()
	rep, err := verify(f, anchor)
	rep.Anchor = anchor
	return rep, err
}

func verify(r io.Reader, anchor *Anchor) (*Report, error) {
	rep := &Report{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var prev [32]byte
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		n++
		rep.Lines = n - 1
		var rec struct {
			Prev        *string `json:"prev"`
			Event       string  `json:"event"`
			AnchorLines int64   `json:"anchor_lines"`
			Reason      string  `json:"reason"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return rep, &BrokenLinkError{Line: n, Reason: "not a JSON record: " + err.Error()}
		}
		if rec.Prev == nil {
			return rep, &BrokenLinkError{Line: n, Reason: "no prev field"}
		}
		want := ""
		if n > 1 {
			want = hex.EncodeToString(prev[:])
		}
		if *rec.Prev != want {
			if n == 1 {
				return rep, &BrokenLinkError{Line: n, Reason: "first line links to a line that is not there (file truncated at the start?)"}
			}
			return rep, &BrokenLinkError{Line: n, Reason: fmt.Sprintf("prev is %.16s…, line %d hashes to %.16s… (a line was edited, removed or inserted)", *rec.Prev, n-1, want)}
		}
		prev = sha256.Sum256(line)
		if anchor != nil && int64(n) == anchor.Lines && prev != anchor.Hash {
			return rep, &TailError{Anchor: *anchor, Lines: n}
		}
		if rec.Event == EventChainBreak {
			rep.Breaks = append(rep.Breaks, RecordedBreak{Line: n, AnchorLines: rec.AnchorLines, Reason: rec.Reason})
		}
	}
	rep.Lines = n
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if anchor != nil && int64(n) < anchor.Lines {
		return rep, &TailError{Anchor: *anchor, Lines: n}
	}
	return rep, nil
}
