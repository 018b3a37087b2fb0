package tezos

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// TokenStandard is the interface of a Tezos token contract.
type TokenStandard string

// Token standards DecodeTokenCall knows.
const (
	FA12 TokenStandard = "fa1.2" // TZIP-7
	FA2  TokenStandard = "fa2"   // TZIP-12
)

// Errors of DecodeTokenCall. Check with errors.Is.
var (
	// ErrTokenEntrypoint: the entrypoint is not one DecodeTokenCall decodes
	// for the standard (FA1.2 transfer and approve; FA2 transfer and
	// update_operators). "default" is one of them: its parameter is the
	// contract's whole or-tree, whose layout the standards do not fix.
	ErrTokenEntrypoint = errors.New("token entrypoint not decoded")
	// ErrTokenParameters: the parameters are not a value of the
	// entrypoint's standard type.
	ErrTokenParameters = errors.New("token parameters do not match the standard")
)

// TokenCall is a decoded call to an FA1.2 or FA2 contract.
type TokenCall struct {
	Standard   TokenStandard
	Entrypoint string           // "transfer", "approve" (FA1.2) or "update_operators" (FA2)
	Transfers  []TokenTransfer  // transfer: every transfer of the call, in order
	Approval   *TokenApproval   // FA1.2 approve
	Operators  []OperatorUpdate // FA2 update_operators, in order
}

// TokenTransfer is one transfer of a transfer call.
type TokenTransfer struct {
	From, To string   // base58 addresses (an entrypoint suffix kept as "%name")
	TokenID  *big.Int // FA2 only; nil for FA1.2
	Amount   *big.Int
}

// TokenApproval is an FA1.2 approve: Spender may transfer up to Amount of the caller's tokens.
type TokenApproval struct {
	Spender string
	Amount  *big.Int
}

// OperatorUpdate is one add_operator (Add) or remove_operator of an FA2
// update_operators call: Operator may transfer any amount of Owner's
// TokenID tokens once added.
type OperatorUpdate struct {
	Add             bool
	Owner, Operator string
	TokenID         *big.Int
}

// Total is what the call moves or lets another account move: the sum of
// its transfers' amounts and of the approved amount.
func (c *TokenCall) Total() *big.Int {
	sum := new(big.Int)
	for _, t := range c.Transfers {
		sum.Add(sum, t.Amount)
	}
	if c.Approval != nil {
		sum.Add(sum, c.Approval.Amount)
	}
	return sum
}

// DecodeTokenCall decodes the parameters (one binary Micheline expression,
// as in Operation.Parameters) of a call to entrypoint of a contract of the
// given standard:
//
//	FA1.2 transfer          pair (address :from) (pair (address :to) (nat :value))
//	FA1.2 approve           pair (address :spender) (nat :value)
//	FA2   transfer          list (pair (address %from_) (list %txs (pair (address %to_) (pair (nat %token_id) (nat %amount)))))
//	FA2   update_operators  list (or (pair %add_operator (address %owner) (pair (address %operator) (nat %token_id)))
//	                                 (pair %remove_operator (address %owner) (pair (address %operator) (nat %token_id))))
//
// Values are read as Octez reads them for those types: a pair may be
// written Pair a b, as a right comb (Pair a b c) or as a sequence {a; b; c};
// an address as a string or in its binary form. Anything else (another
// entrypoint, annotations, extra arguments, trailing bytes, an expression
// nested deeper than these types) fails with an error wrapping
// ErrTokenEntrypoint or ErrTokenParameters; nothing is guessed.
func DecodeTokenCall(std TokenStandard, entrypoint string, params []byte) (*TokenCall, error) {
	c := &TokenCall{Standard: std, Entrypoint: entrypoint}
	var decode func(*mNode) error
	switch {
	case std == FA12 && entrypoint == "transfer":
		decode = c.fa12Transfer
	case std == FA12 && entrypoint == "approve":
		decode = c.fa12Approve
	case std == FA2 && entrypoint == "transfer":
		decode = c.fa2Transfer
	case std == FA2 && entrypoint == "update_operators":
		decode = c.fa2UpdateOperators
	case std != FA12 && std != FA2:
		return nil, fmt.Errorf("%w: unknown token standard %q", ErrTokenEntrypoint, std)
	default:
		return nil, fmt.Errorf("%w: %s entrypoint %q", ErrTokenEntrypoint, std, entrypoint)
	}
	if params == nil {
		return nil, fmt.Errorf("%w: %s %s without parameters", ErrTokenParameters, std, entrypoint)
	}
	n, err := parseMichelineValue(params)
	if err == nil {
		err = decode(n)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrTokenParameters, std, entrypoint, err)
	}
	return c, nil
}

func (c *TokenCall) fa12Transfer(n *mNode) error {
	f, err := comb(n, 3)
	if err != nil {
		return err
	}
	var t TokenTransfer
	if t.From, err = f[0].address(); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if t.To, err = f[1].address(); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if t.Amount, err = f[2].nat(); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	c.Transfers = []TokenTransfer{t}
	return nil
}

func (c *TokenCall) fa12Approve(n *mNode) error {
	f, err := comb(n, 2)
	if err != nil {
		return err
	}
	var a TokenApproval
	if a.Spender, err = f[0].address(); err != nil {
		return fmt.Errorf("spender: %w", err)
	}
	if a.Amount, err = f[1].nat(); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	c.Approval = &a
	return nil
}

func (c *TokenCall) fa2Transfer(n *mNode) error {
	batches, err := n.list()
	if err != nil {
		return err
	}
	c.Transfers = []TokenTransfer{}
	for i, b := range batches {
		f, err := comb(b, 2)
		if err != nil {
			return fmt.Errorf("transfer %d: %w", i, err)
		}
		from, err := f[0].address()
		if err != nil {
			return fmt.Errorf("transfer %d from_: %w", i, err)
		}
		txs, err := f[1].list()
		if err != nil {
			return fmt.Errorf("transfer %d txs: %w", i, err)
		}
		for j, tx := range txs {
			g, err := comb(tx, 3)
			if err != nil {
				return fmt.Errorf("transfer %d tx %d: %w", i, j, err)
			}
			t := TokenTransfer{From: from}
			if t.To, err = g[0].address(); err != nil {
				return fmt.Errorf("transfer %d tx %d to_: %w", i, j, err)
			}
			if t.TokenID, err = g[1].nat(); err != nil {
				return fmt.Errorf("transfer %d tx %d token_id: %w", i, j, err)
			}
			if t.Amount, err = g[2].nat(); err != nil {
				return fmt.Errorf("transfer %d tx %d amount: %w", i, j, err)
			}
			c.Transfers = append(c.Transfers, t)
		}
	}
	return nil
}

func (c *TokenCall) fa2UpdateOperators(n *mNode) error {
	items, err := n.list()
	if err != nil {
		return err
	}
	c.Operators = []OperatorUpdate{}
	for i, it := range items {
		var u OperatorUpdate
		switch {
		case it.isPrim(primLeft, 1):
			u.Add = true
		case it.isPrim(primRight, 1):
		default:
			return fmt.Errorf("update %d: not Left (add_operator) or Right (remove_operator)", i)
		}
		f, err := comb(it.args[0], 3)
		if err != nil {
			return fmt.Errorf("update %d: %w", i, err)
		}
		if u.Owner, err = f[0].address(); err != nil {
			return fmt.Errorf("update %d owner: %w", i, err)
		}
		if u.Operator, err = f[1].address(); err != nil {
			return fmt.Errorf("update %d operator: %w", i, err)
		}
		if u.TokenID, err = f[2].nat(); err != nil {
			return fmt.Errorf("update %d token_id: %w", i, err)
		}
		c.Operators = append(c.Operators, u)
	}
	return nil
}

// Michelson data primitives (Octez michelson_v1_primitives.ml).
const (
	primLeft  = 5
	primPair  = 7
	primRight = 8
)

// mNode is a decoded Micheline expression.
type mNode struct {
	tag    byte     // mInt, mString, mBytes, mSeq, or mPrim0 for every primitive application
	prim   byte     // primitive code
	args   []*mNode // primitive arguments or sequence elements
	annots bool     // the primitive carries annotations
	num    *big.Int // mInt
	data   []byte   // mString, mBytes
}

// maxMichelineDepth bounds the nesting parseMichelineValue accepts; the
// token types above need at most 8 levels.
const maxMichelineDepth = 32

// parseMichelineValue decodes exactly one binary Micheline expression.
func parseMichelineValue(b []byte) (*mNode, error) {
	r := newReader(b)
	n := r.michelineNode(0)
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes after the expression", len(b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return n, nil
}

func (r *reader) michelineNode(depth int) *mNode {
	if depth > maxMichelineDepth {
		r.fail("expression nested deeper than %d", maxMichelineDepth)
		return nil
	}
	tag := r.u8("node tag")
	if !r.ok() {
		return nil
	}
	n := &mNode{tag: tag}
	switch tag {
	case mInt:
		n.num = r.zarith("int", true, true)
	case mString, mBytes:
		n.data = r.dynBytes("string or bytes")
	case mSeq:
		r.dyn("sequence", func() {
			for r.ok() && r.left() > 0 {
				n.args = append(n.args, r.michelineNode(depth+1))
			}
		})
	case mPrim0, mPrim0Annots, mPrim1, mPrim1Annots, mPrim2, mPrim2Annots:
		n.tag, n.prim = mPrim0, r.u8("primitive")
		for i := 0; i < int(tag-mPrim0)/2; i++ {
			n.args = append(n.args, r.michelineNode(depth+1))
		}
		if (tag-mPrim0)%2 == 1 {
			r.dynBytes("annotations")
			n.annots = true
		}
	case mPrimGeneric:
		n.tag, n.prim = mPrim0, r.u8("primitive")
		r.dyn("arguments", func() {
			for r.ok() && r.left() > 0 {
				n.args = append(n.args, r.michelineNode(depth+1))
			}
		})
		if a := r.dynBytes("annotations"); len(a) > 0 {
			n.annots = true
		}
	default:
		r.off--
		r.fail("unknown Micheline node tag %d", tag)
	}
	if !r.ok() {
		return nil
	}
	return n
}

// isPrim reports whether n is primitive prim with nargs arguments and no annotations.
func (n *mNode) isPrim(prim byte, nargs int) bool {
	return n.tag == mPrim0 && n.prim == prim && len(n.args) == nargs && !n.annots
}

// comb reads n as a right comb of k ≥ 2 values, as Octez reads a value of
// type pair t1 (pair t2 (… tk)): Pair a b, where b holds the rest; Pair a
// b c …; or a sequence {a; b; c …}.
func comb(n *mNode, k int) ([]*mNode, error) {
	out := make([]*mNode, 0, k)
	for len(out) < k-1 {
		var elems []*mNode
		switch {
		case n.tag == mPrim0 && n.prim == primPair && !n.annots && len(n.args) >= 2:
			elems = n.args
		case n.tag == mSeq && len(n.args) >= 2:
			elems = n.args
		default:
			return nil, fmt.Errorf("not a pair of %d values", k-len(out))
		}
		if len(elems) > k-len(out) {
			return nil, fmt.Errorf("a pair of %d values where %d are expected", len(elems), k-len(out))
		}
		out = append(out, elems[0])
		if len(elems) == 2 {
			n = elems[1]
		} else {
			n = &mNode{tag: mPrim0, prim: primPair, args: elems[1:]}
		}
	}
	return append(out, n), nil
}

// list reads n as a Michelson list: a sequence, possibly empty.
func (n *mNode) list() ([]*mNode, error) {
	if n.tag != mSeq {
		return nil, errors.New("not a list")
	}
	return n.args, nil
}

// nat reads n as a natural number.
func (n *mNode) nat() (*big.Int, error) {
	if n.tag != mInt || n.num.Sign() < 0 {
		return nil, errors.New("not a natural number")
	}
	return n.num, nil
}

// address reads n as a Michelson address: a base58 string (tz1…, tz2…,
// tz3…, tz4…, KT1… or sr1…, optionally with %entrypoint), or its binary
// form (22 bytes, then optionally the entrypoint name). It returns the
// base58 form.
func (n *mNode) address() (string, error) {
	switch n.tag {
	case mString:
		s := string(n.data)
		addr, ep, hasEP := strings.Cut(s, "%")
		if hasEP && (ep == "default" || !validEntrypointName([]byte(ep))) {
			return "", fmt.Errorf("%q: invalid entrypoint", s)
		}
		for _, p := range [][]byte{PrefixTz1, PrefixTz2, PrefixTz3, PrefixTz4, PrefixKT1, PrefixSr1} {
			if _, err := B58Decode(addr, p, 20); err == nil {
				return s, nil
			}
		}
		return "", fmt.Errorf("%q is not an address", s)
	case mBytes:
		if len(n.data) < 22 {
			return "", fmt.Errorf("address of %d bytes", len(n.data))
		}
		r := newReader(n.data[:22])
		var addr string
		if n.data[0] == 3 { // smart rollup: tag, 20 bytes, padding
			r.skip(1, "tag")
			h := r.bytes(20, "smart rollup address")
			if pad := r.u8("padding"); r.ok() && pad != 0 {
				return "", errors.New("non-zero padding in a smart rollup address")
			}
			addr = B58Encode(PrefixSr1, h)
		} else {
			addr = r.contract("address")
		}
		if r.err != nil {
			return "", r.err
		}
		if ep := n.data[22:]; len(ep) > 0 {
			if string(ep) == "default" || !validEntrypointName(ep) {
				return "", errors.New("invalid entrypoint suffix in an address")
			}
			addr += "%" + string(ep)
		}
		return addr, nil
	}
	return "", errors.New("not an address")
}
