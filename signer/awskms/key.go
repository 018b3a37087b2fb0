package awskms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/signer"
)

// readyTTL is how long a DescribeKey answer serves Ready: /readyz may be
// polled often, KMS calls are metered.
const readyTTL = 5 * time.Second

// Key is an AWS KMS signing key. Its public key is read once, at open; every
// signature is one KMS Sign call with MessageType DIGEST and ECDSA_SHA_256.
// It is safe for concurrent use.
type Key struct {
	name    string // the key id, ARN or alias as written in the reference, for errors
	arn     string // the key's ARN (or id) as KMS reported it at open: aliases are resolved once
	client  KMSClient
	pub     signer.PublicKey
	timeout time.Duration

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

var (
	_ signer.Key              = (*Key)(nil)
	_ signer.ReadinessChecker = (*Key)(nil)
)

// curveForSpec maps a KMS key spec to the curve keyward signs with.
func curveForSpec(spec types.KeySpec) (signer.Curve, bool) {
	switch spec {
	case types.KeySpecEccSecgP256k1:
		return signer.Secp256k1, true
	case types.KeySpecEccNistP256:
		return signer.P256, true
	}
	return signer.CurveUnknown, false
}

// specForCurve is the inverse of curveForSpec.
func specForCurve(c signer.Curve) (types.KeySpec, error) {
	switch c {
	case signer.Secp256k1:
		return types.KeySpecEccSecgP256k1, nil
	case signer.P256:
		return types.KeySpecEccNistP256, nil
	}
	return "", fmt.Errorf("%w: AWS KMS has no %v signing keys", ErrUnsupportedKeySpec, c)
}

// openKey checks the key with DescribeKey (enabled, SIGN_VERIFY, a supported
// spec) and reads its public key with one GetPublicKey.
func openKey(ctx context.Context, r ref, c KMSClient) (*Key, error) {
	k := &Key{name: r.keyID, client: c, timeout: r.timeout}
	md, err := k.describe(ctx)
	if err != nil {
		return nil, err
	}
	if err := k.checkUsable(md); err != nil {
		return nil, err
	}
	curve, ok := curveForSpec(md.KeySpec)
	if !ok {
		return nil, k.errorf("%w: key spec is %s", ErrUnsupportedKeySpec, md.KeySpec)
	}
	if md.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, k.errorf("%w (it is %s)", ErrKeyUsage, md.KeyUsage)
	}
	k.arn = r.keyID
	if a := aws.ToString(md.Arn); a != "" {
		k.arn = a
	} else if id := aws.ToString(md.KeyId); id != "" {
		k.arn = id
	}

	cctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := c.GetPublicKey(cctx, &kms.GetPublicKeyInput{KeyId: aws.String(k.arn)}, withDeadline(cctx))
	if err != nil {
		return nil, k.callError("GetPublicKey", err)
	}
	if out.KeySpec != md.KeySpec || out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, k.errorf("%w: GetPublicKey reports %s/%s, DescribeKey %s/%s",
			ErrBadPublicKey, out.KeySpec, out.KeyUsage, md.KeySpec, md.KeyUsage)
	}
	k.pub, err = parseSPKI(out.PublicKey, curve)
	if err != nil {
		return nil, k.errorf("%w: %w", ErrBadPublicKey, err)
	}
	logger().Info("KMS key opened", "key", k.name, "arn", k.arn, "curve", curve.String())
	return k, nil
}

// PublicKey returns the public key read at open.
func (k *Key) PublicKey() signer.PublicKey { return k.pub }

// ARN returns the key's ARN (or key id) as KMS reported it at open.
func (k *Key) ARN() string { return k.arn }

// Sign asks KMS to sign the 32-byte digest (MessageType DIGEST,
// ECDSA_SHA_256) and returns r||s as KMS produced it; signer.SignDigest
// normalizes to low-S and verifies. Failures wrap signer.ErrUnavailable.
func (k *Key) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, signer.ErrBadDigest
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(k.arn),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	}, withDeadline(ctx))
	if err != nil {
		return nil, k.callError("Sign", err)
	}
	sig, err := parseDERSignature(out.Signature)
	if err != nil {
		return nil, k.errorf("%w: %w", signer.ErrBadSignature, err)
	}
	return sig, nil
}

// Ready reports whether KMS still considers the key Enabled. Answers are
// cached for a few seconds so that frequent /readyz polls cost at most one
// DescribeKey per interval.
func (k *Key) Ready(ctx context.Context) error {
	k.readyMu.Lock()
	defer k.readyMu.Unlock()
	if !k.readyAt.IsZero() && time.Since(k.readyAt) < readyTTL {
		return k.readyErr
	}
	md, err := k.describe(ctx)
	if err == nil {
		err = k.checkUsable(md)
	}
	k.readyAt, k.readyErr = time.Now(), err
	return err
}

func (k *Key) describe(ctx context.Context) (*types.KeyMetadata, error) {
	id := k.arn
	if id == "" {
		id = k.name
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}, withDeadline(ctx))
	if err != nil {
		return nil, k.callError("DescribeKey", err)
	}
	if out.KeyMetadata == nil {
		return nil, k.errorf("%w: DescribeKey returned no key metadata", signer.ErrUnavailable)
	}
	return out.KeyMetadata, nil
}

func (k *Key) checkUsable(md *types.KeyMetadata) error {
	if md.KeyState != types.KeyStateEnabled || !md.Enabled {
		state := string(md.KeyState)
		if state == "" {
			state = "not enabled"
		}
		return k.errorf("%w: key state is %s", ErrKeyNotUsable, state)
	}
	return nil
}

func (k *Key) errorf(format string, a ...any) error {
	return fmt.Errorf("awskms %s: %w", k.name, fmt.Errorf(format, a...))
}

// callError wraps a failed KMS call in signer.ErrUnavailable (nothing was
// signed) and the SDK error; a key KMS does not know or cannot use also
// wraps ErrKeyNotFound or ErrKeyNotUsable.
func (k *Key) callError(op string, err error) error {
	return k.errorf("KMS %s: %w", op, classify(err))
}

func classify(err error) error {
	var (
		notFound *types.NotFoundException
		disabled *types.DisabledException
		state    *types.KMSInvalidStateException
	)
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %w: %w", signer.ErrUnavailable, ErrKeyNotFound, err)
	case errors.As(err, &disabled), errors.As(err, &state):
		return fmt.Errorf("%w: %w: %w", signer.ErrUnavailable, ErrKeyNotUsable, err)
	}
	return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
}
