package pipeline

import (
	"errors"
	"fmt"
)

// Chain is the chain a request is for.
type Chain uint8

// The chains keyward signs for.
const (
	Tezos Chain = iota + 1
	Ethereum
)

func (c Chain) String() string {
	switch c {
	case Tezos:
		return "tezos"
	case Ethereum:
		return "ethereum"
	}
	return "unknown"
}

// Class is the outcome class of a decision. Each transport maps classes to
// its status codes in one table.
type Class uint8

// Outcome classes.
const (
	Signed          Class = iota
	Malformed             // the request does not decode
	TooLarge              // the body is over the transport's cap
	Unauthenticated       // authentication is required and missing
	Refused               // a rule refused it: policy, authentication, origin, budget
	UnknownKey            // no such key (or not one this caller may use)
	Conflict              // the watermark refused it (double-signing protection)
	Unavailable           // a store, backend, audit log or node could not be reached; nothing signed
	BackendFailed         // the key backend answered with an error or a bad signature
	Internal              // a bug
	numClasses
)

var classNames = [numClasses]string{"signed", "malformed", "too_large", "unauthenticated", "refused", "unknown_key", "conflict", "unavailable", "backend_failed", "internal"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// AuditOutcome is the audit line's outcome for the class: signed, refused
// (a rule decided) or error (something failed).
func (c Class) AuditOutcome() string {
	switch c {
	case Signed:
		return "signed"
	case Unauthenticated, Refused, UnknownKey, Conflict:
		return "refused"
	}
	return "error"
}

// Rule names what decided an outcome: a configuration rule
// ("tezos.max_fee", "ethereum.to") or one of the constants below.
type Rule string

// Rules that are not policy rules.
const (
	RuleNone      Rule = ""
	RuleRequest   Rule = "request"   // the request's envelope: path, query, body
	RuleDecode    Rule = "decode"    // the payload's encoding
	RuleKey       Rule = "key"       // which key
	RuleWatermark Rule = "watermark" // the high watermark store
	RuleBackend   Rule = "backend"   // the key's backend (KMS, HSM, keystore)
	RuleAudit     Rule = "audit"     // the audit log
	RuleUpstream  Rule = "ethereum.upstream"
	RuleLimits    Rule = "limits" // the budget store
	RuleClients   Rule = "clients"
)

// Error is a decision that is not a signature: its class, the rule that
// decided it, the message the client sees, and (for the operator log only)
// the underlying error, which may name backends and stores.
type Error struct {
	Class Class
	Rule  Rule
	Msg   string
	Err   error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Fail builds an *Error with a formatted client message.
func Fail(c Class, r Rule, format string, args ...any) *Error {
	return &Error{Class: c, Rule: r, Msg: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error whose client message is err's text. Use it only for
// errors written for clients (decoders, policy).
func Wrap(c Class, r Rule, err error) *Error {
	return &Error{Class: c, Rule: r, Msg: err.Error(), Err: err}
}

// ErrorOf returns err as an *Error; an error of another type is Internal,
// its text kept for the log only.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Class: Internal, Rule: RuleNone, Msg: "internal error", Err: err}
}

// PolicyError turns a policy verdict into an outcome: a *policy.Refusal is
// Refused under its rule, anything else Internal.
func PolicyError(err error) *Error { return policyError(err) }
