package awskms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	encasn1 "encoding/asn1"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keyward/keyward/signer"
)

const fakeARN = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"

// fakeKMS is a one-key KMS behind the KMSClient interface. It counts calls.
type fakeKMS struct {
	mu    sync.Mutex
	md    types.KeyMetadata
	curve signer.Curve
	secp  *secp256k1.PrivateKey
	p256  *ecdsa.PrivateKey
	calls map[string]int
	err   error // returned by every call when set
}

func newFakeKMS(t testing.TB, spec types.KeySpec) *fakeKMS {
	t.Helper()
	f := &fakeKMS{
		md: types.KeyMetadata{
			Arn:      aws.String(fakeARN),
			KeyId:    aws.String("11111111-2222-3333-4444-555555555555"),
			Enabled:  true,
			KeyState: types.KeyStateEnabled,
			KeySpec:  spec,
			KeyUsage: types.KeyUsageTypeSignVerify,
		},
		calls: map[string]int{},
	}
	switch spec {
	case types.KeySpecEccSecgP256k1:
		f.curve = signer.Secp256k1
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		f.secp = k
	case types.KeySpecEccNistP256:
		f.curve = signer.P256
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.p256 = k
	default:
		f.md.KeyUsage = types.KeyUsageTypeEncryptDecrypt
	}
	return f
}

func (f *fakeKMS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeKMS) enter(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	return f.err
}

func (f *fakeKMS) setState(s types.KeyState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.md.KeyState = s
	f.md.Enabled = s == types.KeyStateEnabled
}

// marshalSPKI builds an EC SubjectPublicKeyInfo.
func marshalSPKI(curveOID encasn1.ObjectIdentifier, point []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidECPublicKey)
			b.AddASN1ObjectIdentifier(curveOID)
		})
		b.AddASN1BitString(point)
	})
	return b.BytesOrPanic()
}

func (f *fakeKMS) spki() []byte {
	if f.secp != nil {
		return marshalSPKI(oidSecp256k1, f.secp.PubKey().SerializeUncompressed())
	}
	if f.p256 != nil {
		pub, _ := f.p256.PublicKey.Bytes()
		return marshalSPKI(oidP256, pub)
	}
	return nil
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if err := f.enter("DescribeKey"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	md := f.md
	return &kms.DescribeKeyOutput{KeyMetadata: &md}, nil
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	if err := f.enter("GetPublicKey"); err != nil {
		return nil, err
	}
	if f.curve == signer.CurveUnknown {
		return nil, &types.UnsupportedOperationException{Message: aws.String("no public key")}
	}
	return &kms.GetPublicKeyOutput{KeyId: f.md.Arn, KeySpec: f.md.KeySpec, KeyUsage: f.md.KeyUsage, PublicKey: f.spki()}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	if err := f.enter("Sign"); err != nil {
		return nil, err
	}
	if aws.ToString(in.KeyId) != fakeARN || in.MessageType != types.MessageTypeDigest || in.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256 {
		return nil, &types.InvalidKeyUsageException{Message: aws.String("unexpected Sign input")}
	}
	switch {
	case f.secp != nil:
		return &kms.SignOutput{Signature: secpecdsa.Sign(f.secp, in.Message).Serialize()}, nil
	case f.p256 != nil:
		sig, err := ecdsa.SignASN1(rand.Reader, f.p256, in.Message)
		return &kms.SignOutput{Signature: sig}, err
	}
	return nil, &types.InvalidKeyUsageException{Message: aws.String("not a signing key")}
}

func (f *fakeKMS) CreateKey(context.Context, *kms.CreateKeyInput, ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	return nil, errors.New("fake: CreateKey not implemented")
}

func (f *fakeKMS) CreateAlias(context.Context, *kms.CreateAliasInput, ...func(*kms.Options)) (*kms.CreateAliasOutput, error) {
	return nil, errors.New("fake: CreateAlias not implemented")
}

func (f *fakeKMS) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	return nil, errors.New("fake: GenerateDataKey not implemented")
}

func (f *fakeKMS) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return nil, errors.New("fake: Decrypt not implemented")
}
