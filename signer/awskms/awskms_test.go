package awskms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyward/keyward/signer"
)

func mustURI(t testing.TB, s string) *signer.URI {
	t.Helper()
	u, err := signer.ParseURI(s)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", s, err)
	}
	return u
}

func TestParseRef_AcceptsDesignForms(t *testing.T) {
	tests := []struct {
		in   string
		want ref
	}{
		{"awskms:///alias/baker?region=eu-west-1", ref{keyID: "alias/baker", region: "eu-west-1", timeout: DefaultTimeout}},
		{"awskms:///1234abcd-12ab-34cd-56ef-1234567890ab", ref{keyID: "1234abcd-12ab-34cd-56ef-1234567890ab", timeout: DefaultTimeout}},
		{"awskms:///arn:aws:kms:eu-west-1:111122223333:key/abcd", ref{keyID: "arn:aws:kms:eu-west-1:111122223333:key/abcd", region: "eu-west-1", timeout: DefaultTimeout}},
		{"awskms:///arn:aws:kms:us-east-2:111122223333:alias/x?region=us-east-2", ref{keyID: "arn:aws:kms:us-east-2:111122223333:alias/x", region: "us-east-2", timeout: DefaultTimeout}},
		{"awskms://127.0.0.1:4599/alias/baker", ref{keyID: "alias/baker", endpoint: "http://127.0.0.1:4599", timeout: DefaultTimeout}},
		{"awskms://localhost:4599/abcd", ref{keyID: "abcd", endpoint: "http://localhost:4599", timeout: DefaultTimeout}},
		{"awskms://[::1]:4599/abcd", ref{keyID: "abcd", endpoint: "http://[::1]:4599", timeout: DefaultTimeout}},
		{"awskms://kms.eu-west-1.amazonaws.com/alias/baker", ref{keyID: "alias/baker", endpoint: "https://kms.eu-west-1.amazonaws.com", timeout: DefaultTimeout}},
		{"awskms:///alias/baker?endpoint=https://vpce-1.kms.eu-west-1.vpce.amazonaws.com&region=eu-west-1", ref{keyID: "alias/baker", region: "eu-west-1", endpoint: "https://vpce-1.kms.eu-west-1.vpce.amazonaws.com", timeout: DefaultTimeout}},
		{"awskms:///alias/baker?timeout=750ms&profile=prod", ref{keyID: "alias/baker", profile: "prod", timeout: 750 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRef(mustURI(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRef_RejectsMalformed(t *testing.T) {
	for _, in := range []string{
		"awskms:///",
		"awskms:///alias/",
		"awskms:key-id=abcd",
		"awskms:///alias/x?regoin=eu-west-1",
		"awskms:///alias/x?region=a&region=b",
		"awskms:///alias/x?timeout=soon",
		"awskms:///alias/x?timeout=-1s",
		"awskms:///alias/x?endpoint=ftp://host",
		"awskms:///alias/x?endpoint=localhost:4599",
		"awskms://127.0.0.1:1/alias/x?endpoint=http://127.0.0.1:2",
		"awskms:///arn:aws:kms:eu-west-1:111122223333:key/abcd?region=us-east-1",
		"awskms:///arn:aws:s3:::bucket/key",
		"file:///alias/x",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := parseRef(mustURI(t, in))
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("got %v, want ErrBadRef", err)
			}
		})
	}
}

func TestParseSPKI_AcceptsBothCurvesAndChecksOIDs(t *testing.T) {
	sk, _ := secp256k1.GeneratePrivateKey()
	secpPoint := sk.PubKey().SerializeUncompressed()
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p256Point, _ := pk.PublicKey.Bytes()
	trailing := append(marshalSPKI(oidSecp256k1, secpPoint), 0)

	tests := []struct {
		name    string
		der     []byte
		curve   signer.Curve
		want    []byte // compressed point; nil = error expected
		wantErr bool
	}{
		{"secp256k1", marshalSPKI(oidSecp256k1, secpPoint), signer.Secp256k1, sk.PubKey().SerializeCompressed(), false},
		{"p256 from crypto/x509", p256DER, signer.P256, elliptic.MarshalCompressed(elliptic.P256(), pk.X, pk.Y), false},
		{"curve differs from key spec", marshalSPKI(oidSecp256k1, secpPoint), signer.P256, nil, true},
		{"p256 OID with secp256k1 point", marshalSPKI(oidP256, secpPoint), signer.P256, nil, true},
		{"secp256k1 OID with p256 point", marshalSPKI(oidSecp256k1, p256Point), signer.Secp256k1, nil, true},
		{"unknown curve", marshalSPKI(encasn1.ObjectIdentifier{1, 3, 132, 0, 34}, secpPoint), signer.Secp256k1, nil, true},
		{"trailing byte", trailing, signer.Secp256k1, nil, true},
		{"truncated", p256DER[:len(p256DER)-1], signer.P256, nil, true},
		{"empty", nil, signer.P256, nil, true},
		{"off-curve point", marshalSPKI(oidSecp256k1, append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)), signer.Secp256k1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSPKI(tt.der, tt.curve)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %x", got.Bytes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Curve != tt.curve || !bytes.Equal(got.Bytes, tt.want) {
				t.Errorf("got %v %x, want %x", got.Curve, got.Bytes, tt.want)
			}
		})
	}
}

func TestParseSPKI_RejectsNonECAlgorithm(t *testing.T) {
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	// Flip id-ecPublicKey (1.2.840.10045.2.1) to 1.2.840.10045.2.2.
	i := bytes.Index(der, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01})
	if i < 0 {
		t.Fatal("OID not found")
	}
	der[i+6] = 2
	if _, err := parseSPKI(der, signer.P256); err == nil {
		t.Fatal("accepted a non-EC algorithm")
	}
}

func TestParseDERSignature_PadsAndRejects(t *testing.T) {
	der := func(r, s []byte) []byte {
		type sig struct{ R, S encasn1.RawValue }
		b, _ := encasn1.Marshal(sig{
			encasn1.RawValue{Tag: encasn1.TagInteger, Bytes: r},
			encasn1.RawValue{Tag: encasn1.TagInteger, Bytes: s},
		})
		return b
	}
	full := append([]byte{0}, bytes.Repeat([]byte{0xff}, 32)...) // 2^256-1, positive
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"short r and s are left-padded", der([]byte{1}, []byte{2}), append(append(make([]byte, 31), 1), append(make([]byte, 31), 2)...)},
		{"32-byte values with sign padding", der(full, full), bytes.Repeat([]byte{0xff}, 64)},
		{"zero r", der([]byte{0}, []byte{1}), nil},
		{"negative s", der([]byte{1}, []byte{0x80}), nil},
		{"r wider than 256 bits", der(append([]byte{1}, make([]byte, 32)...), []byte{1}), nil},
		{"non-minimal integer", der([]byte{0, 1}, []byte{1}), nil},
		{"trailing byte", append(der([]byte{1}, []byte{1}), 0), nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDERSignature(tt.in)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("accepted: %x", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func openFake(t testing.TB, f *fakeKMS, ref string) (*Key, error) {
	t.Helper()
	return OpenWithClient(context.Background(), mustURI(t, ref), f)
}

func TestOpen_FetchesPublicKeyOncePerKey(t *testing.T) {
	for _, spec := range []types.KeySpec{types.KeySpecEccSecgP256k1, types.KeySpecEccNistP256} {
		t.Run(string(spec), func(t *testing.T) {
			f := newFakeKMS(t, spec)
			k, err := openFake(t, f, "awskms:///alias/baker")
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				d := sha256.Sum256([]byte{byte(i)})
				if _, err := signer.SignDigest(context.Background(), k, d[:]); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.count("GetPublicKey"); n != 1 {
				t.Errorf("GetPublicKey called %d times for 50 signatures, want 1", n)
			}
			if n := f.count("Sign"); n != 50 {
				t.Errorf("Sign called %d times, want 50", n)
			}
			if k.ARN() != fakeARN {
				t.Errorf("ARN %q, want %q", k.ARN(), fakeARN)
			}
		})
	}
}

func TestOpen_RejectsUnusableKeys(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*fakeKMS)
		want   error
	}{
		{"disabled", func(f *fakeKMS) { f.setState(types.KeyStateDisabled) }, ErrKeyNotUsable},
		{"pending deletion", func(f *fakeKMS) { f.setState(types.KeyStatePendingDeletion) }, ErrKeyNotUsable},
		{"RSA_2048", func(f *fakeKMS) { f.md.KeySpec = types.KeySpecRsa2048 }, ErrUnsupportedKeySpec},
		{"ECC_NIST_P384", func(f *fakeKMS) { f.md.KeySpec = types.KeySpecEccNistP384 }, ErrUnsupportedKeySpec},
		{"SYMMETRIC_DEFAULT", func(f *fakeKMS) { f.md.KeySpec = types.KeySpecSymmetricDefault }, ErrUnsupportedKeySpec},
		{"key agreement usage", func(f *fakeKMS) { f.md.KeyUsage = types.KeyUsageTypeKeyAgreement }, ErrKeyUsage},
		{"not found", func(f *fakeKMS) { f.err = &types.NotFoundException{Message: aws.String("Alias not found")} }, ErrKeyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKMS(t, types.KeySpecEccSecgP256k1)
			tt.mutate(f)
			_, err := openFake(t, f, "awskms:///alias/baker")
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "awskms alias/baker: ") {
				t.Errorf("error %q does not name the backend and key", err)
			}
		})
	}
}

func TestSign_BackendErrorWrapsUnavailable(t *testing.T) {
	f := newFakeKMS(t, types.KeySpecEccSecgP256k1)
	k, err := openFake(t, f, "awskms:///alias/baker")
	if err != nil {
		t.Fatal(err)
	}
	f.err = &types.KMSInternalException{Message: aws.String("boom")}
	d := sha256.Sum256(nil)
	_, err = signer.SignDigest(context.Background(), k, d[:])
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	var ie *types.KMSInternalException
	if !errors.As(err, &ie) {
		t.Errorf("SDK error not wrapped: %v", err)
	}
	f.err = &types.DisabledException{Message: aws.String("disabled")}
	_, err = k.Sign(context.Background(), d[:])
	if !errors.Is(err, signer.ErrUnavailable) || !errors.Is(err, ErrKeyNotUsable) {
		t.Fatalf("got %v, want ErrUnavailable and ErrKeyNotUsable", err)
	}
}

func TestSign_RejectsDigestNot32Bytes(t *testing.T) {
	f := newFakeKMS(t, types.KeySpecEccNistP256)
	k, err := openFake(t, f, "awskms:///alias/baker")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(context.Background(), make([]byte, 31)); !errors.Is(err, signer.ErrBadDigest) {
		t.Fatalf("got %v, want ErrBadDigest", err)
	}
	if n := f.count("Sign"); n != 0 {
		t.Errorf("KMS Sign called %d times for a bad digest", n)
	}
}

func TestReady_CachesDescribeKeyAndFailsWhenDisabled(t *testing.T) {
	f := newFakeKMS(t, types.KeySpecEccSecgP256k1)
	k, err := openFake(t, f, "awskms:///alias/baker")
	if err != nil {
		t.Fatal(err)
	}
	base := f.count("DescribeKey")
	for i := 0; i < 20; i++ {
		if err := k.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("DescribeKey") - base; n != 1 {
		t.Errorf("20 Ready calls made %d DescribeKey calls, want 1", n)
	}
	f.setState(types.KeyStateDisabled)
	k.readyMu.Lock()
	k.readyAt = time.Now().Add(-readyTTL)
	k.readyMu.Unlock()
	if err := k.Ready(context.Background()); !errors.Is(err, ErrKeyNotUsable) {
		t.Fatalf("got %v, want ErrKeyNotUsable", err)
	}
}

// throttlingTransport answers every KMS call with ThrottlingException until
// okAfter attempts have been made, then delegates to ok.
type throttlingTransport struct {
	attempts atomic.Int32
	okAfter  int32 // 0 = never
	ok       func(*http.Request) (*http.Response, error)
}

func (tt *throttlingTransport) Do(req *http.Request) (*http.Response, error) {
	n := tt.attempts.Add(1)
	if tt.okAfter > 0 && n > tt.okAfter {
		return tt.ok(req)
	}
	return jsonResponse(req, 400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`), nil
}

func jsonResponse(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

// throttledKey is a key whose client is the real SDK client, configured as
// Open configures it, talking to tr.
func throttledKey(t *testing.T, f *fakeKMS, tr *throttlingTransport, timeout time.Duration) *Key {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	r := ref{keyID: fakeARN, region: "eu-west-1", endpoint: "http://127.0.0.1:9", timeout: timeout}
	c, err := newClient(context.Background(), r, func(o *kms.Options) { o.HTTPClient = tr })
	if err != nil {
		t.Fatal(err)
	}
	pub, err := parseSPKI(f.spki(), f.curve)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{name: "alias/throttled", arn: fakeARN, client: c, pub: pub, timeout: timeout}
}

func TestSign_ThrottlingRetriesStopBeforeDeadline(t *testing.T) {
	f := newFakeKMS(t, types.KeySpecEccSecgP256k1)
	for _, timeout := range []time.Duration{300 * time.Millisecond, 1500 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			tr := &throttlingTransport{}
			k := throttledKey(t, f, tr, timeout)
			d := sha256.Sum256(nil)
			start := time.Now()
			_, err := signer.SignDigest(context.Background(), k, d[:])
			elapsed := time.Since(start)
			if !errors.Is(err, signer.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
				t.Errorf("throttling error not wrapped: %v", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("slept into the deadline instead of giving up before it: %v", err)
			}
			if elapsed >= timeout {
				t.Errorf("returned after %v, deadline %v", elapsed, timeout)
			}
			if n := tr.attempts.Load(); n < 1 || n > maxAttempts {
				t.Errorf("%d attempts, want 1..%d", n, maxAttempts)
			}
			t.Logf("%d attempts in %v", tr.attempts.Load(), elapsed)
		})
	}
}

func TestSign_ThrottlingRetriedUntilSuccess(t *testing.T) {
	f := newFakeKMS(t, types.KeySpecEccSecgP256k1)
	tr := &throttlingTransport{okAfter: 2}
	tr.ok = func(req *http.Request) (*http.Response, error) {
		d := sha256.Sum256([]byte("retry"))
		out, err := f.Sign(req.Context(), &kms.SignInput{KeyId: aws.String(fakeARN), Message: d[:],
			MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		if err != nil {
			return nil, err
		}
		return jsonResponse(req, 200, fmt.Sprintf(`{"KeyId":%q,"Signature":%q,"SigningAlgorithm":"ECDSA_SHA_256"}`,
			fakeARN, base64.StdEncoding.EncodeToString(out.Signature))), nil
	}
	// Throttling backoff is at most 1 s then 2 s, so two retries always fit in 5 s.
	k := throttledKey(t, f, tr, 5*time.Second)
	d := sha256.Sum256([]byte("retry"))
	if _, err := signer.SignDigest(context.Background(), k, d[:]); err != nil {
		t.Fatal(err)
	}
	if n := tr.attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3 (two throttled, one signed)", n)
	}
}

func TestOpen_WithoutRegionIsAClearError(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err := signer.Open(context.Background(), "awskms:///alias/baker")
	if !errors.Is(err, ErrNoRegion) {
		t.Fatalf("got %v, want ErrNoRegion", err)
	}
}

func TestCreateKey_RejectsBadOptionsBeforeCallingKMS(t *testing.T) {
	tests := []struct {
		name string
		opts CreateOptions
		want error
	}{
		{"ed25519", CreateOptions{Curve: signer.Ed25519, Alias: "x", Endpoint: "127.0.0.1:9"}, ErrUnsupportedKeySpec},
		{"reserved alias", CreateOptions{Curve: signer.P256, Alias: "alias/aws/kms", Endpoint: "127.0.0.1:9"}, ErrBadRef},
		{"bad endpoint", CreateOptions{Curve: signer.P256, Alias: "x", Endpoint: "ftp://h"}, ErrBadRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := CreateKey(context.Background(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
