package rpc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrTokensFile wraps every problem with the bearer-tokens file.
var ErrTokensFile = errors.New("ethereum tokens_file")

// MinTokenLength is the shortest accepted bearer token.
const MinTokenLength = 16

// LoadTokens reads a bearer-tokens file: one "client-name token" pair per
// line, blank lines and lines starting with # ignored. The file must not be
// readable by group or others; names and tokens must be unique and tokens at
// least MinTokenLength characters. It returns name -> token.
func LoadTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokensFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokensFile, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w %s: mode %04o lets group or others read it; chmod 600", ErrTokensFile, path, st.Mode().Perm())
	}
	out := map[string]string{}
	seen := map[string]string{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := string(bytes.TrimSpace(sc.Bytes()))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 2 {
			return nil, fmt.Errorf("%w %s line %d: want \"client-name token\"", ErrTokensFile, path, n)
		}
		name, tok := fs[0], fs[1]
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("%w %s line %d: token of %s is shorter than %d characters", ErrTokensFile, path, n, name, MinTokenLength)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w %s line %d: client %s listed twice", ErrTokensFile, path, n, name)
		}
		if other, dup := seen[tok]; dup {
			return nil, fmt.Errorf("%w %s line %d: client %s has the same token as %s", ErrTokensFile, path, n, name, other)
		}
		out[name] = tok
		seen[tok] = name
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrTokensFile, path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s: no tokens", ErrTokensFile, path)
	}
	return out, nil
}

// TokenSet is a loaded bearer-tokens file, kept as token hashes. A nil
// *TokenSet authenticates nobody and means: no tokens configured.
type TokenSet struct {
	byHash map[[32]byte]string // sha256(token) -> client name
}

// LoadTokenSet reads a bearer-tokens file (see LoadTokens).
func LoadTokenSet(path string) (*TokenSet, error) {
	toks, err := LoadTokens(path)
	if err != nil {
		return nil, err
	}
	ts := &TokenSet{byHash: make(map[[32]byte]string, len(toks))}
	for name, tok := range toks {
		ts.byHash[sha256.Sum256([]byte(tok))] = name
	}
	return ts, nil
}

// Len is the number of tokens.
func (ts *TokenSet) Len() int {
	if ts == nil {
		return 0
	}
	return len(ts.byHash)
}

// Lookup returns the client name of token. The token is compared by its
// hash, in constant time against every entry.
func (ts *TokenSet) Lookup(token string) (string, bool) {
	if ts == nil {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	name, found := "", false
	for k, n := range ts.byHash {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			name, found = n, true
		}
	}
	return name, found
}
