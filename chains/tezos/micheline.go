package tezos

// Micheline binary expression node tags (Octez micheline.alpha.michelson_v1.expression).
const (
	mInt            = 0  // Z
	mString         = 1  // 4-byte length + bytes
	mSeq            = 2  // 4-byte length + expressions
	mPrim0          = 3  // prim
	mPrim0Annots    = 4  // prim, annots
	mPrim1          = 5  // prim, arg
	mPrim1Annots    = 6  // prim, arg, annots
	mPrim2          = 7  // prim, arg1, arg2
	mPrim2Annots    = 8  // prim, arg1, arg2, annots
	mPrimGeneric    = 9  // prim, 4-byte length + args, annots
	mBytes          = 10 // 4-byte length + bytes
	michelineMaxTag = mBytes
)

// mFrame is a pending node on the explicit stack of skipMicheline: either
// count more expressions (until < 0), or expressions until offset until.
type mFrame struct {
	count     int
	until     int
	prevLimit int
	annots    bool // read annotations once the arguments are done
}

// skipMicheline reads exactly one Micheline expression in its binary form,
// checking its structure. It uses an explicit stack, so deep nesting cannot
// exhaust the goroutine stack; primitive codes are not checked against a
// protocol's list (the packed data may use newer ones).
func (r *reader) skipMicheline(what string) {
	var buf [16]mFrame
	stack := append(buf[:0], mFrame{count: 1, until: -1})
	for len(stack) > 0 && r.err == nil {
		top := &stack[len(stack)-1]
		if top.until >= 0 {
			if r.off == top.until {
				done := *top
				stack = stack[:len(stack)-1]
				r.end = done.prevLimit
				if done.annots {
					r.dynBytes(what + " annotations")
				}
				continue
			}
		} else {
			if top.count == 0 {
				done := *top
				stack = stack[:len(stack)-1]
				if done.annots {
					r.dynBytes(what + " annotations")
				}
				continue
			}
			top.count--
		}
		tag := r.u8(what + " node tag")
		if r.err != nil {
			return
		}
		switch tag {
		case mInt:
			r.zarith(what+" int", true, false)
		case mString:
			r.dynBytes(what + " string")
		case mBytes:
			r.dynBytes(what + " bytes")
		case mSeq:
			n := r.dynLen(what + " sequence")
			if r.err == nil {
				stack = append(stack, mFrame{until: r.off + n, prevLimit: r.end})
				r.end = r.off + n
			}
		case mPrim0:
			r.u8(what + " primitive")
		case mPrim0Annots:
			r.u8(what + " primitive")
			r.dynBytes(what + " annotations")
		case mPrim1, mPrim1Annots, mPrim2, mPrim2Annots:
			r.u8(what + " primitive")
			n := 1
			if tag >= mPrim2 {
				n = 2
			}
			stack = append(stack, mFrame{count: n, until: -1, annots: tag == mPrim1Annots || tag == mPrim2Annots})
		case mPrimGeneric:
			r.u8(what + " primitive")
			n := r.dynLen(what + " arguments")
			if r.err == nil {
				stack = append(stack, mFrame{until: r.off + n, prevLimit: r.end, annots: true})
				r.end = r.off + n
			}
		default:
			r.off--
			r.fail("unknown Micheline node tag %d in %s", tag, what)
		}
	}
	if r.err != nil {
		// Restore the outermost limit so later error reporting is sane.
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].until >= 0 {
				r.end = stack[i].prevLimit
			}
		}
	}
}
