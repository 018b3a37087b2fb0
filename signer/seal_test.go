package signer

import (
	"context"
	"errors"
	"testing"
)

type nopSealer struct{}

func (nopSealer) Seal(context.Context, string) ([]byte, []byte, error)   { return nil, nil, nil }
func (nopSealer) Unseal(context.Context, string, []byte) ([]byte, error) { return nil, nil }

func TestSealerFor_FindsTheSchemesSealer(t *testing.T) {
	RegisterSealer("sealtest", nopSealer{})
	if s, err := SealerFor("sealtest:///alias/x"); err != nil || s != (nopSealer{}) {
		t.Fatalf("SealerFor = %v, %v", s, err)
	}
	if _, err := SealerFor("nosuchkms:///alias/x"); !errors.Is(err, ErrNoSealer) {
		t.Fatalf("unregistered scheme: err = %v, want ErrNoSealer", err)
	}
	if _, err := SealerFor("not a uri"); err == nil {
		t.Fatal("malformed reference accepted")
	}
}

func TestRegisterSealer_PanicsOnDuplicate(t *testing.T) {
	RegisterSealer("sealdup", nopSealer{})
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	RegisterSealer("sealdup", nopSealer{})
}
