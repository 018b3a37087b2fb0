package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/signer"
)

// Sealer seals local keys with a symmetric KMS key (envelope encryption):
// Seal asks GenerateDataKey (AES_256) for a fresh data key and its encrypted
// form, Unseal asks Decrypt to recover the data key. Only the encrypted data
// key is stored beside the local key. References use the key syntax of this
// package and must name a SYMMETRIC_DEFAULT key
// ("awskms:///alias/keyward-seal?region=eu-west-1").
type Sealer struct {
	// newClient builds the client for a reference; nil uses the AWS SDK.
	newClient func(ctx context.Context, r ref) (KMSClient, error)
}

const dataKeyLen = 32

func (s Sealer) client(ctx context.Context, refStr string) (ref, KMSClient, error) {
	u, err := signer.ParseURI(refStr)
	if err != nil {
		return ref{}, nil, err
	}
	r, err := parseRef(u)
	if err != nil {
		return ref{}, nil, err
	}
	if s.newClient != nil {
		c, err := s.newClient(ctx, r)
		return r, c, err
	}
	c, err := newClient(ctx, r)
	if err != nil {
		return ref{}, nil, fmt.Errorf("awskms %s: %w", r.keyID, err)
	}
	return r, c, nil
}

// Seal returns a fresh 32-byte data key and the same key encrypted under the
// KMS key named by ref.
func (s Sealer) Seal(ctx context.Context, ref string) (dataKey, encryptedDataKey []byte, err error) {
	r, c, err := s.client(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:   aws.String(r.keyID),
		KeySpec: types.DataKeySpecAes256,
	}, withDeadline(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("awskms %s: KMS GenerateDataKey: %w", r.keyID, classify(err))
	}
	if len(out.Plaintext) != dataKeyLen || len(out.CiphertextBlob) == 0 {
		return nil, nil, fmt.Errorf("awskms %s: KMS GenerateDataKey: %w: data key is %d bytes, want %d", r.keyID, signer.ErrUnavailable, len(out.Plaintext), dataKeyLen)
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// Unseal asks KMS to decrypt encryptedDataKey with the key named by ref (KMS
// refuses if the data key was sealed under another key) and returns the
// 32-byte data key.
func (s Sealer) Unseal(ctx context.Context, ref string, encryptedDataKey []byte) ([]byte, error) {
	r, c, err := s.client(ctx, ref)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	out, err := c.Decrypt(ctx, &kms.DecryptInput{
		KeyId:          aws.String(r.keyID),
		CiphertextBlob: encryptedDataKey,
	}, withDeadline(ctx))
	if err != nil {
		return nil, fmt.Errorf("awskms %s: KMS Decrypt: %w", r.keyID, classify(err))
	}
	if len(out.Plaintext) != dataKeyLen {
		return nil, fmt.Errorf("awskms %s: KMS Decrypt: %w: data key is %d bytes, want %d", r.keyID, signer.ErrUnavailable, len(out.Plaintext), dataKeyLen)
	}
	return out.Plaintext, nil
}
