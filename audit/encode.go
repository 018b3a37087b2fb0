package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// MarshalJSON encodes r exactly as encoding/json would (field order and
// omitempty as tagged, HTML characters not escaped), without reflection:
// every decision writes one line.
func (r *Record) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, 512)), nil
}

func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","chain":`...)
	b = appendString(b, r.Chain)
	b = optString(b, `,"client":`, r.Client)
	b = optString(b, `,"auth":`, r.Auth)
	b = optString(b, `,"method":`, r.Method)
	b = optString(b, `,"key":`, r.Key)
	b = optString(b, `,"address":`, r.Address)
	b = optString(b, `,"kind":`, r.Kind)
	b = optString(b, `,"chain_id":`, r.ChainID)
	if r.Level != nil {
		b = append(b, `,"level":`...)
		b = strconv.AppendInt(b, *r.Level, 10)
	}
	if r.Round != nil {
		b = append(b, `,"round":`...)
		b = strconv.AppendInt(b, *r.Round, 10)
	}
	if len(r.Operations) > 0 {
		b = append(b, `,"operations":[`...)
		for i, op := range r.Operations {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, op)
		}
		b = append(b, ']')
	}
	b = optString(b, `,"to":`, r.To)
	b = optString(b, `,"value":`, r.Value)
	b = optString(b, `,"digest":`, r.Digest)
	b = append(b, `,"outcome":`...)
	b = appendString(b, r.Outcome)
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	b = optString(b, `,"rule":`, r.Rule)
	b = optString(b, `,"reason":`, r.Reason)
	if r.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(r.Count), 10)
	}
	b = optString(b, `,"payload":`, r.Payload)
	b = optString(b, `,"event":`, r.Event)
	if r.AnchorLines != 0 {
		b = append(b, `,"anchor_lines":`...)
		b = strconv.AppendInt(b, r.AnchorLines, 10)
	}
	b = optString(b, `,"anchor_hash":`, r.AnchorHash)
	b = append(b, `,"prev":`...)
	b = appendString(b, r.Prev)
	return append(b, '}')
}

func optString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: control characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
