package tezos

import (
	"sync"
	"sync/atomic"
)

// maxCachedAddresses bounds the address cache: the accounts and contracts
// a signer sees again and again (its own keys, the oracle contract) fit
// many times over; an attacker's random addresses only fill it, after
// which encoding is simply not cached.
const maxCachedAddresses = 4096

var (
	addrCache   sync.Map // string(prefix ‖ hash) → base58 text
	addrsCached atomic.Int32
)

// addressText is B58Encode(prefix, h) for 20-byte address hashes, cached:
// base58 is a quadratic conversion, and every generic request names its
// source and destination.
func addressText(prefix, h []byte) string {
	var k [32]byte
	key := append(append(k[:0], prefix...), h...)
	if v, ok := addrCache.Load(string(key)); ok {
		return v.(string)
	}
	s := B58Encode(prefix, h)
	if addrsCached.Load() < maxCachedAddresses {
		if _, loaded := addrCache.LoadOrStore(string(key), s); !loaded {
			addrsCached.Add(1)
		}
	}
	return s
}
