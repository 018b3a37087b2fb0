// Package audit writes one tamper-evident JSON line per signing decision, signed or refused, and verifies such files.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Outcomes.
const (
	Signed  = "signed"
	Refused = "refused"
	Failed  = "error"
)

// Record is one decision. It never holds a secret; Payload is set only when
// the key's config asks for full payloads.
type Record struct {
	Time       time.Time `json:"time"`
	Chain      string    `json:"chain"`                // "tezos" or "ethereum"
	Client     string    `json:"client,omitempty"`     // remote address
	Auth       string    `json:"auth,omitempty"`       // authenticating key, token name or certificate subject
	Method     string    `json:"method,omitempty"`     // JSON-RPC method (Ethereum)
	Key        string    `json:"key,omitempty"`        // config name of the key
	Address    string    `json:"address,omitempty"`    // tz… or 0x…
	Kind       string    `json:"kind,omitempty"`       // request kind (block, attestation, generic, transaction, …)
	ChainID    string    `json:"chain_id,omitempty"`   // Tezos chain id or Ethereum chain id
	Level      *int64    `json:"level,omitempty"`      // consensus kinds
	Round      *int64    `json:"round,omitempty"`      // consensus kinds
	Operations []string  `json:"operations,omitempty"` // operation kinds in a Tezos batch
	To         string    `json:"to,omitempty"`         // Ethereum recipient
	Value      string    `json:"value,omitempty"`      // Ethereum value (wei)
	Digest     string    `json:"digest,omitempty"`     // hex digest that was (or would have been) signed
	Outcome    string    `json:"outcome"`              // signed, refused, error
	Status     int       `json:"status,omitempty"`     // HTTP status or JSON-RPC code
	Rule       string    `json:"rule,omitempty"`       // the rule that refused it
	Reason     string    `json:"reason,omitempty"`     // readable reason
	Payload    string    `json:"payload,omitempty"`    // full payload hex, only when the key's config asks
	Prev       string    `json:"prev"`                 // SHA-256 of the previous line (hex); "" for the first line
}

// Logger records decisions. Log must return an error when the record could
// not be written: the caller then withholds the signature.
type Logger interface {
	Log(ctx context.Context, r *Record) error
	Close() error
}

// ErrUnavailable wraps failures to write the audit log.
var ErrUnavailable = errors.New("audit log unavailable")

// File appends records to a file as JSON lines, each carrying the hash of the
// previous line.
type File struct {
	mu   sync.Mutex
	f    *os.File
	prev [32]byte
	has  bool
	buf  bytes.Buffer
}

// OpenFile opens (or creates, mode 0600) an audit file and resumes its chain.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a := &File{f: f}
	last, err := lastLine(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	if last != nil {
		a.prev = sha256.Sum256(last)
		a.has = true
	}
	return a, nil
}

func lastLine(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	// Read the tail; a line is far below 1 MiB.
	start := size - (1 << 20)
	if start < 0 {
		start = 0
	}
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, err
	}
	buf = bytes.TrimRight(buf, "\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	return buf, nil
}

// Log appends r as one line. It sets r.Prev.
func (a *File) Log(_ context.Context, r *Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	if a.has {
		r.Prev = hex.EncodeToString(a.prev[:])
	} else {
		r.Prev = ""
	}
	a.buf.Reset()
	enc := json.NewEncoder(&a.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	line := a.buf.Bytes()
	if _, err := a.f.Write(line); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	a.prev = sha256.Sum256(line[:len(line)-1])
	a.has = true
	return nil
}

// Sync flushes the file to disk.
func (a *File) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	return a.f.Sync()
}

// Close syncs and closes the file.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	a.f = nil
	return err
}

// Discard is a Logger that keeps nothing (no audit configured).
type Discard struct{}

// Log does nothing.
func (Discard) Log(context.Context, *Record) error { return nil }

// Close does nothing.
func (Discard) Close() error { return nil }

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
