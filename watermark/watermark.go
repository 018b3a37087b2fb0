// Package watermark keeps durable high watermarks for Tezos consensus messages so that a key never signs two different messages at the same level and round.
package watermark

import (
	"context"
	"errors"
	"fmt"
)

// ID names one mark: a key (its pkh), a chain id and the magic byte of the
// request kind (0x11 block, 0x12 preattestation, 0x13 attestation).
type ID struct {
	Key   string `json:"key"`
	Chain string `json:"chain"`
	Kind  byte   `json:"kind"`
}

func (id ID) String() string { return fmt.Sprintf("%s/%s/0x%02x", id.Key, id.Chain, id.Kind) }

// Mark is the highest (level, round) signed for an ID, with the Blake2b digest
// of the whole payload signed there and, once signing finished, its signature.
type Mark struct {
	Level     int64  `json:"level"`
	Round     int64  `json:"round"`
	Digest    []byte `json:"digest"`              // 32-byte Blake2b-256 of the payload
	Signature []byte `json:"signature,omitempty"` // encoded signature bytes as returned to the client
}

// Entry is a mark with its ID, as listed by Marks.
type Entry struct {
	ID   ID   `json:"id"`
	Mark Mark `json:"mark"`
}

// Errors. Check with errors.Is / errors.As.
var (
	// ErrUnavailable: the store could not be read or written; nothing may be signed.
	ErrUnavailable = errors.New("watermark store unavailable")
	// ErrReadOnly: a write to a store opened with OpenReadOnly.
	ErrReadOnly = errors.New("watermark store opened read-only")
)

// RefusedError is returned by Advance when the request is not above the mark.
type RefusedError struct {
	ID    ID
	Have  Mark  // the stored mark
	Level int64 // the request's level
	Round int64 // the request's round
}

func (e *RefusedError) Error() string {
	if e.Level == e.Have.Level && e.Round == e.Have.Round {
		return fmt.Sprintf("watermark: level %d round %d already signed for a different payload (%s)", e.Level, e.Round, e.ID)
	}
	return fmt.Sprintf("watermark: level %d round %d is not above the mark at level %d round %d (%s)", e.Level, e.Round, e.Have.Level, e.Have.Round, e.ID)
}

// Store keeps marks durably. Implementations must be safe for concurrent use
// by many goroutines (and, for shared stores, many processes); requests for
// one ID are serialized, different IDs do not wait on each other.
type Store interface {
	// Advance checks (level, round, digest) against the mark for id. It
	// passes when (level, round) is strictly above the mark, or equal with the
	// same digest (a retry). On a strictly higher request the new mark is
	// durable before Advance returns. On a retry it returns the stored
	// signature when there is one (nil otherwise). A refusal is a
	// *RefusedError; a store failure wraps ErrUnavailable.
	Advance(ctx context.Context, id ID, level, round int64, digest []byte) (prevSig []byte, err error)
	// SetSignature records the signature produced for the mark (level, round,
	// digest) so an identical retry returns the same bytes. It does nothing if
	// the mark has moved on.
	SetSignature(ctx context.Context, id ID, level, round int64, digest, sig []byte) error
	// Marks lists every mark.
	Marks(ctx context.Context) ([]Entry, error)
	// Set overwrites the mark for id unconditionally (watermark set --force, import).
	Set(ctx context.Context, id ID, m Mark) error
	// Ready reports whether the store can be written.
	Ready(ctx context.Context) error
	Close() error
}

// Above reports whether (level, round) is strictly above (l2, r2).
func Above(level, round, l2, r2 int64) bool {
	return level > l2 || level == l2 && round > r2
}

// Reverter is an optional Store capability: undo an Advance whose signing
// failed (backend down), so that an outage moves no mark.
//
// Revert restores the mark that Advance replaced, but only when the mark is
// still exactly (level, round, digest), carries no signature, and no other
// request has passed Advance on it since (no identical retry in flight or
// answered, in this process or another sharing the store). Otherwise it does
// nothing: a mark that stays put is always safe. A store that cannot tell
// must not implement Reverter.
//
// Only the caller whose own Advance of (level, round, digest) passed without
// a stored signature, and whose signing then failed, may call Revert, once:
// stores count that Advance as the one pass allowed.
type Reverter interface {
	Revert(ctx context.Context, id ID, level, round int64, digest []byte) error
}
