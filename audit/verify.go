package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// BrokenLinkError reports the first line whose prev does not match the line before it.
type BrokenLinkError struct {
	Line   int // 1-based
	Reason string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit chain broken at line %d: %s", e.Line, e.Reason)
}

// Verify reads an audit stream and checks every link. It returns the number
// of lines checked and a *BrokenLinkError at the first broken or missing link.
func Verify(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var prev [32]byte
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		n++
		var rec struct {
			Prev *string `json:"prev"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return n - 1, &BrokenLinkError{Line: n, Reason: "not a JSON record: " + err.Error()}
		}
		if rec.Prev == nil {
			return n - 1, &BrokenLinkError{Line: n, Reason: "no prev field"}
		}
		want := ""
		if n > 1 {
			want = hex.EncodeToString(prev[:])
		}
		if *rec.Prev != want {
			if n == 1 {
				return 0, &BrokenLinkError{Line: n, Reason: "first line links to a line that is not there (file truncated at the start?)"}
			}
			return n - 1, &BrokenLinkError{Line: n, Reason: fmt.Sprintf("prev is %.16s…, line %d hashes to %.16s… (a line was edited, removed or inserted)", *rec.Prev, n-1, want)}
		}
		prev = sha256.Sum256(line)
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, nil
}
