// Package policy decides, per key, which Tezos and Ethereum requests may be signed; everything not allowed is refused with the rule that refused it.
package policy

import (
	"errors"
	"fmt"
)

// ErrRefused matches every *Refusal with errors.Is.
var ErrRefused = errors.New("refused by policy")

// Refusal is a policy decision against a request. Rule names the config rule
// that refused it (e.g. "tezos.allow", "tezos.max_fee", "ethereum.to").
type Refusal struct {
	Rule   string
	Reason string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("refused by policy rule %s: %s", r.Rule, r.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// Refuse builds a *Refusal.
func Refuse(rule, format string, args ...any) error {
	return &Refusal{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}
