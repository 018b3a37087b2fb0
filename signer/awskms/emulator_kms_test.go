package awskms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// rawRecorder passes signatures through and counts those KMS returned high-S.
type rawRecorder struct {
	signer.Key
	total, highS atomic.Int32
}

func (r *rawRecorder) Sign(ctx context.Context, d []byte) ([]byte, error) {
	sig, err := r.Key.Sign(ctx, d)
	if err == nil {
		r.total.Add(1)
		if !signer.IsLowS(r.PublicKey().Curve, sig) {
			r.highS.Add(1)
		}
	}
	return sig, err
}

func keyIDOf(t testing.TB, arn string) string {
	t.Helper()
	i := strings.LastIndex(arn, ":key/")
	if i < 0 {
		t.Fatalf("not a key ARN: %q", arn)
	}
	return arn[i+len(":key/"):]
}

func TestEmulator_CreatedKeysOpenByAliasIDAndARN_AndSignLowS(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	for _, curve := range []signer.Curve{signer.Secp256k1, signer.P256} {
		t.Run(curve.String(), func(t *testing.T) {
			alias := "alias/keyward-" + curve.String()
			ref, created, err := CreateKey(ctx, CreateOptions{Curve: curve, Alias: alias, Region: emulatorRegion, Endpoint: e.addr()})
			if err != nil {
				t.Fatal(err)
			}
			if want := e.ref(alias, "region="+emulatorRegion); ref != want {
				t.Errorf("ref %q, want %q", ref, want)
			}
			if created.PublicKey().Curve != curve {
				t.Fatalf("created a %v key", created.PublicKey().Curve)
			}
			arn := created.(*Key).ARN()
			tags, err := e.client().ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != TagKey || aws.ToString(tags.Tags[0].TagValue) != TagValue {
				t.Errorf("tags %+v, want keyward=true", tags.Tags)
			}

			byRef := map[string]string{
				"alias":  ref,
				"key id": e.ref(keyIDOf(t, arn)),
				"ARN":    e.ref(arn),
			}
			for name, r := range byRef {
				k, err := signer.Open(ctx, r)
				if err != nil {
					t.Fatalf("open by %s (%s): %v", name, r, err)
				}
				if !bytes.Equal(k.PublicKey().Bytes, created.PublicKey().Bytes) {
					t.Errorf("open by %s: public key %x, want %x", name, k.PublicKey().Bytes, created.PublicKey().Bytes)
				}
			}

			k, err := signer.Open(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			rec := &rawRecorder{Key: k}
			const n = 200
			for i := 0; i < n; i++ {
				d := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(curve)})
				sig, err := signer.SignDigest(ctx, rec, d[:])
				if err != nil {
					t.Fatalf("signature %d: %v", i, err)
				}
				if !signer.IsLowS(curve, sig) || !signer.Verify(k.PublicKey(), d[:], sig) {
					t.Fatalf("signature %d left SignDigest high-S or not verifying: %x", i, sig)
				}
			}
			// The emulator does not normalize: about half its signatures are
			// high-S (binomial, n=200: 60..140 holds with overwhelming probability).
			high := rec.highS.Load()
			t.Logf("%d of %d raw KMS signatures were high-S; none left SignDigest high-S", high, rec.total.Load())
			if high < 60 || high > 140 {
				t.Errorf("%d of %d raw signatures high-S; expected about half", high, n)
			}
		})
	}
}

func TestEmulator_StoppedEmulatorFailsWithinDeadlineThenRecovers(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	ref, _, err := CreateKey(ctx, CreateOptions{Curve: signer.Secp256k1, Alias: "alias/flaky", Endpoint: e.addr()})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	k, err := signer.Open(ctx, ref+"?timeout="+timeout.String())
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("before"))
	if _, err := signer.SignDigest(ctx, k, d[:]); err != nil {
		t.Fatal(err)
	}

	e.stop()
	start := time.Now()
	_, err = signer.SignDigest(ctx, k, d[:])
	elapsed := time.Since(start)
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("with KMS down: got %v, want ErrUnavailable", err)
	}
	if !strings.HasPrefix(err.Error(), "awskms alias/flaky: ") {
		t.Errorf("error %q does not name the backend and key", err)
	}
	if elapsed >= timeout {
		t.Errorf("failed after %v, deadline %v", elapsed, timeout)
	}
	t.Logf("KMS down: failed in %v: %v", elapsed, err)
	if err := k.(signer.ReadinessChecker).Ready(ctx); !errors.Is(err, signer.ErrUnavailable) {
		t.Errorf("Ready with KMS down: got %v, want ErrUnavailable", err)
	}

	e.start()
	d = sha256.Sum256([]byte("after"))
	sig, err := signer.SignDigest(ctx, k, d[:])
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if !signer.Verify(k.PublicKey(), d[:], sig) {
		t.Fatal("signature after restart does not verify")
	}
}

func TestEmulator_DisabledOrDeletedKeyIsAStartUpError(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	c := e.client()
	tests := []struct {
		alias   string
		disable func(keyID string) error
	}{
		{"alias/disabled", func(id string) error {
			_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
			return err
		}},
		{"alias/deleted", func(id string) error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.alias, func(t *testing.T) {
			ref, k, err := CreateKey(ctx, CreateOptions{Curve: signer.P256, Alias: tt.alias, Endpoint: e.addr()})
			if err != nil {
				t.Fatal(err)
			}
			if err := k.(signer.ReadinessChecker).Ready(ctx); err != nil {
				t.Fatalf("Ready on an enabled key: %v", err)
			}
			if err := tt.disable(k.(*Key).ARN()); err != nil {
				t.Fatal(err)
			}
			_, err = signer.Open(ctx, ref)
			if !errors.Is(err, ErrKeyNotUsable) {
				t.Fatalf("open: got %v, want ErrKeyNotUsable", err)
			}
			t.Logf("open: %v", err)
			// The already open key turns unready once its cached answer expires.
			k.(*Key).readyMu.Lock()
			k.(*Key).readyAt = time.Time{}
			k.(*Key).readyMu.Unlock()
			if err := k.(signer.ReadinessChecker).Ready(ctx); !errors.Is(err, ErrKeyNotUsable) {
				t.Errorf("Ready: got %v, want ErrKeyNotUsable", err)
			}
			d := sha256.Sum256(nil)
			if _, err := signer.SignDigest(ctx, k, d[:]); !errors.Is(err, signer.ErrUnavailable) {
				t.Errorf("Sign with a disabled key: got %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestEmulator_WrongKeySpecIsAStartUpError(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	c := e.client()
	tests := []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
		want  error
	}{
		{types.KeySpecRsa2048, types.KeyUsageTypeSignVerify, ErrUnsupportedKeySpec},
		{types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify, ErrUnsupportedKeySpec},
		{types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt, ErrUnsupportedKeySpec},
	}
	for _, tt := range tests {
		t.Run(string(tt.spec), func(t *testing.T) {
			out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: tt.spec, KeyUsage: tt.usage})
			if err != nil {
				t.Fatal(err)
			}
			_, err = signer.Open(ctx, e.ref(aws.ToString(out.KeyMetadata.KeyId)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), string(tt.spec)) {
				t.Errorf("error %q does not name the key spec", err)
			}
		})
	}
	t.Run("unknown alias", func(t *testing.T) {
		_, err := signer.Open(ctx, e.ref("alias/nobody"))
		if !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("got %v, want ErrKeyNotFound", err)
		}
	})
}

func TestEmulator_SealerRoundTripsDataKey(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	c := e.client()
	var refs []string
	for _, alias := range []string{"alias/seal-a", "alias/seal-b"} {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, e.ref(alias))
	}
	var s Sealer
	dk, edk, err := s.Seal(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(dk) != 32 || len(edk) == 0 || bytes.Contains(edk, dk) {
		t.Fatalf("data key %d bytes, encrypted %d bytes", len(dk), len(edk))
	}
	got, err := s.Unseal(ctx, refs[0], edk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dk) {
		t.Fatal("unsealed data key differs")
	}
	if _, err := s.Unseal(ctx, refs[1], edk); err == nil {
		t.Error("a data key sealed under seal-a was unsealed with seal-b")
	}
}

func TestEmulator_SealedLocalKeyRoundTrip(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	c := e.client()
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/keyward-seal"), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	for _, curve := range []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519, signer.BLS12381} {
		t.Run(curve.String(), func(t *testing.T) {
			pk, err := local.Generate(curve)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "sealed.json")
			if err := local.WriteKeyFile(ctx, path, pk, local.WriteOptions{SealWith: e.ref("alias/keyward-seal")}); err != nil {
				t.Fatal(err)
			}
			k, err := signer.Open(ctx, "file://"+path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.PublicKey().Bytes, pk.PublicKey().Bytes) {
				t.Fatal("sealed key opened with a different public key")
			}
			if curve == signer.BLS12381 { // tz4: KMS cannot hold it, a KMS-sealed file can
				if _, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, []byte("\x13sealed")); err != nil {
					t.Fatal(err)
				}
				if _, err := signer.ProvePossession(ctx, k, nil); err != nil {
					t.Fatal(err)
				}
			} else {
				d := sha256.Sum256([]byte("sealed"))
				if _, err := signer.SignDigest(ctx, k, d[:]); err != nil {
					t.Fatal(err)
				}
			}

			// Without KMS the file is useless.
			e.stop()
			defer e.start()
			if _, err := signer.Open(ctx, "file://"+path); err == nil {
				t.Fatal("opened a sealed key file with KMS down")
			}
		})
	}
}

// BenchmarkKMS_DirectSign is one SDK Sign call to the emulator, the baseline
// for keyward's added latency.
func BenchmarkKMS_DirectSign(b *testing.B) {
	k := benchKey(b)
	d := sha256.Sum256([]byte("bench"))
	in := &kms.SignInput{KeyId: aws.String(k.arn), Message: d[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}
	benchP50(b, func() error {
		_, err := k.client.Sign(context.Background(), in)
		return err
	})
}

// BenchmarkKMS_SignDigest is the same call through the backend and
// signer.SignDigest (deadline, DER parsing, low-S, verification).
func BenchmarkKMS_SignDigest(b *testing.B) {
	k := benchKey(b)
	d := sha256.Sum256([]byte("bench"))
	benchP50(b, func() error {
		_, err := signer.SignDigest(context.Background(), k, d[:])
		return err
	})
}

func benchKey(b *testing.B) *Key {
	e := startEmulator(b)
	_, k, err := CreateKey(context.Background(), CreateOptions{Curve: signer.Secp256k1, Alias: "alias/bench", Endpoint: e.addr()})
	if err != nil {
		b.Fatal(err)
	}
	return k.(*Key)
}

func benchP50(b *testing.B, f func() error) {
	for i := 0; i < 20; i++ { // warm the connection pool
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSignDigest_FakeKMS is keyward's own cost per signature (deadline,
// DER parsing, low-S, verification) with KMS replaced by an in-process fake
// whose signing cost is included.
func BenchmarkSignDigest_FakeKMS(b *testing.B) {
	f := newFakeKMS(b, types.KeySpecEccSecgP256k1)
	k, err := openFake(b, f, "awskms:///alias/bench")
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("bench"))
	benchP50(b, func() error {
		_, err := signer.SignDigest(context.Background(), k, d[:])
		return err
	})
}
