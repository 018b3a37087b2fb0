package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// TestServe_SecondKeywardOnTheSameKeyRefusesToStart: two keywards on one
// machine serving one baker key from two watermark directories would each
// sign the same level (issue 11 finding 10). The second refuses at start,
// naming the key and the first one's pid, and starts once the first stops.
func TestServe_SecondKeywardOnTheSameKeyRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	k, err := local.Generate(signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "baker.json")
	if err := local.WriteKeyFile(context.Background(), keyPath, k, local.WriteOptions{Plaintext: true}); err != nil {
		t.Fatal(err)
	}
	pkh, err := tezos.PublicKeyHash(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	config := func(name, addr string) string {
		d := filepath.Join(dir, name)
		return testutil.WriteConfig(t, t.TempDir(), fmt.Sprintf("tezos:\n  listen: %s\nwatermark: file://%s\nkeys:\n  baker:\n    ref: file://%s\n", addr, d, keyPath))
	}
	addrA, addrB := testutil.Addr(t), testutil.Addr(t)
	a := testutil.StartKeyward(t, config("wm-a", addrA), addrA)
	cfgB := config("wm-b", addrB)
	if d, err := testutil.TryStartKeyward(t, cfgB, addrB); err == nil {
		d.Stop()
		t.Fatal("a second keyward serving the same key from another watermark directory started")
	} else {
		t.Logf("second keyward: %v", err)
		for _, want := range []string{pkh, fmt.Sprintf("pid %d", a.Cmd.Process.Pid), filepath.Join(dir, "wm-a")} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("start-up refusal does not name %q:\n%v", want, err)
			}
		}
	}
	a.Stop()
	testutil.StartKeyward(t, cfgB, addrB).Stop()
}
