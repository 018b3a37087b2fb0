package rpc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrExposed means the Ethereum endpoint would listen beyond loopback with
// no bearer tokens and without ethereum.allow_non_loopback.
var ErrExposed = errors.New("ethereum: listening beyond loopback without tokens_file")

// CheckExposure decides whether the endpoint may listen on addr. Without
// tokens it must be a loopback address unless allowNonLoopback is set; then
// warn is true and the caller logs a warning at every start.
func CheckExposure(addr string, tokens, allowNonLoopback bool) (warn bool, err error) {
	if tokens {
		return false, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("ethereum listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return false, nil
	}
	if ip, perr := netip.ParseAddr(host); perr == nil && ip.IsLoopback() {
		return false, nil
	}
	if allowNonLoopback {
		return true, nil
	}
	return false, fmt.Errorf("%w: %s (set ethereum.tokens_file, or ethereum.allow_non_loopback: true)", ErrExposed, addr)
}
