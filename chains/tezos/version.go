package tezos

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/signer"
)

// Errors of BLSSchemeForVersion. Check with errors.Is.
var (
	// ErrVersionWithoutBLS means signature version 0 was asked for: Octez's
	// signature_v0 has no BLS, so a tz4 key cannot sign under it.
	ErrVersionWithoutBLS = errors.New("signature version 0 has no BLS12-381 (tz4) signatures")
	// ErrBadVersion means the version query parameter is not "0", "1", "2" or "3".
	ErrBadVersion = errors.New("invalid signature version (want 0, 1, 2 or 3)")
)

// BLSSchemeForVersion maps the remote signer's version query parameter
// (Octez Signature.version_arg: exactly "0" to "3") to the BLS scheme a tz4
// key signs with: "1" is the augmented scheme (signature_v1), "2", "3" and
// no parameter ("") the proof-of-possession scheme (signature_v2, v3, the
// latest). "0" fails with ErrVersionWithoutBLS and anything else with
// ErrBadVersion. For tz1/tz2/tz3 keys the version changes nothing; a
// handler still refuses ErrBadVersion for them and ignores
// ErrVersionWithoutBLS.
func BLSSchemeForVersion(v string) (signer.BLSScheme, error) {
	switch v {
	case "", "2", "3":
		return signer.BLSProofOfPossession, nil
	case "1":
		return signer.BLSAugmented, nil
	case "0":
		return 0, ErrVersionWithoutBLS
	}
	if len(v) > 8 {
		v = v[:8] + "…"
	}
	return 0, fmt.Errorf("%w: %q", ErrBadVersion, v)
}
