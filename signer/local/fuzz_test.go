package local

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeKeyFile feeds arbitrary key file contents through decoding and
// decryption: it must never panic, and a key it returns matches public_key.
func FuzzDecodeKeyFile(f *testing.F) {
	oldN, oldMem := defaultScrypt, maxScryptMemory
	defaultScrypt = scryptParams{N: minScryptN, R: 8, P: 1}
	maxScryptMemory = 128 * minScryptN * 8
	f.Cleanup(func() { defaultScrypt, maxScryptMemory = oldN, oldMem })
	oldLog := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Cleanup(func() { slog.SetDefault(oldLog) })

	dir := f.TempDir()
	for i, c := range allCurves {
		k, _ := Generate(c)
		for j, opts := range []WriteOptions{{Passphrase: []byte("pw")}, {Plaintext: true}, {SealWith: "fakekms:///alias/f"}} {
			p := filepath.Join(dir, string(rune('a'+i))+string(rune('a'+j)))
			if err := WriteKeyFile(context.Background(), p, k, opts); err != nil {
				f.Fatal(err)
			}
			data, _ := os.ReadFile(p)
			f.Add(data)
		}
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"curve":"ed25519","public_key":"","crypto":{"kdf":"scrypt","kdf_params":{"n":-1,"r":0,"p":0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, curve, err := decodeKeyFile(data)
		if err != nil {
			return
		}
		k, err := decryptKeyFile(context.Background(), "fuzz", kf, curve, []byte("pw"))
		if err != nil {
			return
		}
		if k.Curve() != curve {
			t.Fatalf("decoded a %v key from a %v file", k.Curve(), curve)
		}
		signsFor(t, k, k.PublicKey(), "x")
	})
}
