package tezos

import "github.com/keyward/keyward/signer"

// BinaryPKH parses a tz address into its curve and its 21-byte binary form
// (curve tag ‖ Blake2b-160 hash), as Octez request authentication signs it.
func BinaryPKH(s string) (signer.Curve, []byte, error) {
	c, h, err := ParsePublicKeyHash(s)
	if err != nil {
		return c, nil, err
	}
	e, err := encodingOf(c)
	if err != nil {
		return c, nil, err
	}
	return c, append([]byte{e.tag}, h...), nil
}
