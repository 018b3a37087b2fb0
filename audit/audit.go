// Package audit writes one tamper-evident JSON line per signing decision, signed or refused, and verifies such files.
package audit

import (
	"context"
	"errors"
	"time"
)

// Outcomes.
const (
	Signed  = "signed"
	Refused = "refused"
	Failed  = "error"
)

// Record is one decision, or (Count > 0) a summary of requests refused
// before a key and caller were known, or (Event set) something keyward
// itself records, such as a chain break. It never holds a secret; Payload is
// set only when the key's config asks for full payloads.
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
	Count      int       `json:"count,omitempty"`      // summary records: requests of this cause since the last summary
	Payload    string    `json:"payload,omitempty"`    // full payload hex, only when the key's config asks
	Event      string    `json:"event,omitempty"`      // EventChainBreak; "" for decisions and summaries
	// AnchorLines and AnchorHash are the anchor a chain-break record found
	// unmatched: the line count and SHA-256 (hex) of the old head.
	AnchorLines int64  `json:"anchor_lines,omitempty"`
	AnchorHash  string `json:"anchor_hash,omitempty"`
	Prev        string `json:"prev"` // SHA-256 of the previous line (hex); "" for the first line
}

// Logger records decisions. Log must return an error when the record could
// not be written: the caller then withholds the signature. Log may be
// called concurrently.
type Logger interface {
	Log(ctx context.Context, r *Record) error
	Close() error
}

// ErrUnavailable wraps failures to write the audit log.
var ErrUnavailable = errors.New("audit log unavailable")

// Discard is a Logger that keeps nothing (no audit configured).
type Discard struct{}

// Log does nothing.
func (Discard) Log(context.Context, *Record) error { return nil }

// Close does nothing.
func (Discard) Close() error { return nil }
