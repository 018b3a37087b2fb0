//go:build keywardstub

package tezos

import (
	"errors"
	"math/big"
)

type Kind string
type Operation struct {
	Kind        string
	Tag         byte
	Source      string
	Fee         *big.Int
	Amount      *big.Int
	Destination string
	Entrypoint  string
}
type Request struct {
	Magic      byte
	Kind       Kind
	ChainID    string
	Level      int64
	Round      int64
	Branch     string
	Operations []Operation
	Payload    []byte
}

var ErrMalformed = errors.New("m")
var ErrLegacyMagic = errors.New("l")

func ParseRequest(p []byte) (*Request, error) {
	if len(p) == 0 {
		return nil, ErrMalformed
	}
	return &Request{Magic: p[0], Kind: "michelson_data", Payload: p}, nil
}
