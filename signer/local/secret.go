package local

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/signer"
)

// ErrNotHexSecret means a secret text is not 64 hex digits (with or without
// 0x): Octez secret keys are parsed by chains/tezos/octezkey instead.
var ErrNotHexSecret = errors.New("not a secp256k1 secret of 64 hex digits")

// ParseHexSecret parses a secp256k1 secret given as 64 hex digits, with or
// without 0x, surrounding space ignored (the form Ethereum tools export).
// Other text fails with ErrNotHexSecret, a scalar out of range with
// ErrBadSecret. Errors never contain the text.
func ParseHexSecret(text string) (*PrivateKey, error) {
	s := strings.TrimSpace(text)
	if len(s) == 66 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if len(s) != 64 {
		return nil, fmt.Errorf("local: %w", ErrNotHexSecret)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("local: %w", ErrNotHexSecret)
	}
	defer zero(b)
	k, err := NewPrivateKey(signer.Secp256k1, b)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return k, nil
}
