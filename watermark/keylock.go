package watermark

import "errors"

// ErrKeyLocked means another keyward on this machine serves the key with its
// own store; two processes guarding one key with two sets of marks could
// each sign the same level.
var ErrKeyLocked = errors.New("key is served by another keyward on this machine")

// KeyLocker is an optional Store capability of stores whose marks protect a
// key only inside one process's view (the file store): LockKeys takes, for
// each key (a watermark ID's Key, the Tezos address), a lock no other store
// on the machine can hold at the same time, kept until Close. A key held
// elsewhere is an error wrapping ErrKeyLocked that names the key and, when
// known, the holder. The server calls it once at start with the keys it
// serves, so a second keyward refuses to start rather than at the first
// block; once it has been called, Advance for a key not yet locked takes its
// lock first and fails closed (ErrUnavailable) if it cannot.
//
// Stores shared between machines (PostgreSQL) do not implement it: their
// marks are one set whoever serves the key.
type KeyLocker interface {
	LockKeys(keys []string) error
}
