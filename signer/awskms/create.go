package awskms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/signer"
)

// TagKey and TagValue mark the KMS keys keyward creates.
const (
	TagKey   = "keyward"
	TagValue = "true"
)

// ErrAliasExists means the alias asked for already names a KMS key; nothing was created.
var ErrAliasExists = errors.New("KMS alias already exists")

// CreateOptions says what key CreateKey or CreateSealKey makes.
type CreateOptions struct {
	// Curve is signer.Secp256k1 (ECC_SECG_P256K1: tz2 and Ethereum) or
	// signer.P256 (ECC_NIST_P256: tz3); CreateSealKey ignores it.
	Curve signer.Curve
	// Alias names the key ("alias/NAME" or "NAME"); empty makes a key without an alias, named by its ARN.
	Alias string
	// Region is the AWS region; empty uses the AWS configuration chain.
	Region string
	// Endpoint overrides the KMS endpoint: a URL, or HOST:PORT (http for loopback, https otherwise).
	Endpoint string
	// Description is stored with the key; empty gets a default naming keyward and the curve.
	Description string
}

// CreateKey creates a KMS signing key (KeySpec for opts.Curve, KeyUsage
// SIGN_VERIFY, tagged keyward=true), gives it opts.Alias, and opens it. It
// returns the key reference to put in keyward's configuration
// ("awskms:///alias/NAME?region=R", or "awskms://127.0.0.1:PORT/alias/NAME"
// for a loopback endpoint) and the opened key. An alias that already names
// a key is refused (ErrAliasExists) before anything is created: a key left
// without its alias would be billed and forgotten.
func CreateKey(ctx context.Context, opts CreateOptions) (string, signer.Key, error) {
	spec, err := specForCurve(opts.Curve)
	if err != nil {
		return "", nil, fmt.Errorf("awskms: create key: %w", err)
	}
	p, c, err := prepareCreate(ctx, opts)
	if err != nil {
		return "", nil, err
	}
	desc := opts.Description
	if desc == "" {
		desc = fmt.Sprintf("keyward %v signing key", opts.Curve)
	}
	refStr, r, err := createKey(ctx, c, p, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify, Description: aws.String(desc)})
	if err != nil {
		return "", nil, err
	}
	k, err := openKey(ctx, r, c)
	if err != nil {
		return "", nil, err
	}
	return refStr, k, nil
}

// CreateSealKey creates the symmetric KMS key (SYMMETRIC_DEFAULT,
// ENCRYPT_DECRYPT, tagged keyward=true) that seals local key files
// (keys generate --seal-with), gives it opts.Alias (checked free first, as
// by CreateKey), checks that it hands out a data key, and returns its
// reference.
func CreateSealKey(ctx context.Context, opts CreateOptions) (string, error) {
	p, c, err := prepareCreate(ctx, opts)
	if err != nil {
		return "", err
	}
	desc := opts.Description
	if desc == "" {
		desc = "keyward key-file sealing key"
	}
	refStr, r, err := createKey(ctx, c, p, &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, KeyUsage: types.KeyUsageTypeEncryptDecrypt, Description: aws.String(desc)})
	if err != nil {
		return "", err
	}
	s := Sealer{newClient: func(context.Context, ref) (KMSClient, error) { return c, nil }}
	dk, enc, err := s.Seal(ctx, refStr)
	if err == nil {
		var back []byte
		back, err = s.Unseal(ctx, refStr, enc)
		if err == nil && !bytes.Equal(back, dk) {
			err = errors.New("the data key did not decrypt to itself")
		}
		clear(back)
	}
	clear(dk)
	if err != nil {
		return "", fmt.Errorf("awskms: new seal key %s does not seal: %w", r.keyID, err)
	}
	return refStr, nil
}

// createParams is what CreateKey and CreateSealKey check before calling KMS.
type createParams struct {
	alias    string // "" or "alias/NAME"
	timeout  time.Duration
	refHost  string
	refQuery url.Values
}

func prepareCreate(ctx context.Context, opts CreateOptions) (createParams, KMSClient, error) {
	alias := opts.Alias
	if alias != "" && !strings.HasPrefix(alias, "alias/") {
		alias = "alias/" + alias
	}
	if alias == "alias/" || strings.HasPrefix(alias, "alias/aws/") {
		return createParams{}, nil, fmt.Errorf("awskms: create key: %w: alias %q is empty or reserved by AWS", ErrBadRef, opts.Alias)
	}
	p := createParams{alias: alias, timeout: DefaultTimeout, refQuery: url.Values{}}
	r := ref{region: opts.Region, timeout: DefaultTimeout}
	if opts.Region != "" {
		p.refQuery.Set("region", opts.Region)
	}
	if ep := opts.Endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			ep = endpointForHost(ep)
		}
		pu, err := url.Parse(ep)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return createParams{}, nil, fmt.Errorf("awskms: create key: %w: endpoint %q is not an http(s) URL", ErrBadRef, opts.Endpoint)
		}
		r.endpoint = ep
		if endpointForHost(pu.Host) == ep || endpointForHost(pu.Host)+"/" == ep {
			p.refHost = pu.Host
		} else {
			p.refQuery.Set("endpoint", ep)
		}
	}
	c, err := newClient(ctx, r)
	if err != nil {
		return createParams{}, nil, fmt.Errorf("awskms: create key: %w", err)
	}
	return p, c, nil
}

// createKey checks the alias is free, creates the key described by in
// (tagged as keyward's), gives it the alias and returns its reference.
func createKey(ctx context.Context, c KMSClient, p createParams, in *kms.CreateKeyInput) (string, ref, error) {
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.alias != "" {
		out, err := c.DescribeKey(cctx, &kms.DescribeKeyInput{KeyId: aws.String(p.alias)}, withDeadline(cctx))
		var notFound *types.NotFoundException
		switch {
		case err == nil:
			id := "?"
			if out.KeyMetadata != nil {
				id = aws.ToString(out.KeyMetadata.KeyId)
			}
			return "", ref{}, fmt.Errorf("awskms: %w: %s names key %s; nothing was created (pick another alias, or use that key)", ErrAliasExists, p.alias, id)
		case !errors.As(err, &notFound):
			return "", ref{}, fmt.Errorf("awskms: checking that alias %s is free (nothing was created): %w", p.alias, classify(err))
		}
	}
	in.Tags = []types.Tag{{TagKey: aws.String(TagKey), TagValue: aws.String(TagValue)}}
	out, err := c.CreateKey(cctx, in, withDeadline(cctx))
	if err != nil {
		return "", ref{}, fmt.Errorf("awskms: KMS CreateKey: %w", classify(err))
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.KeyId) == "" {
		return "", ref{}, fmt.Errorf("awskms: KMS CreateKey: %w: no key id in the answer", signer.ErrUnavailable)
	}
	keyID := aws.ToString(out.KeyMetadata.KeyId)
	name := keyID
	if p.alias != "" {
		if _, err := c.CreateAlias(cctx, &kms.CreateAliasInput{
			AliasName:   aws.String(p.alias),
			TargetKeyId: aws.String(keyID),
		}, withDeadline(cctx)); err != nil {
			return "", ref{}, fmt.Errorf("awskms: KMS CreateAlias %s for new key %s (the key exists without the alias): %w", p.alias, keyID, classify(err))
		}
		name = p.alias
	}
	refStr := Scheme + "://" + p.refHost + "/" + name
	if len(p.refQuery) > 0 {
		refStr += "?" + p.refQuery.Encode()
	}
	u, err := signer.ParseURI(refStr)
	if err != nil {
		return "", ref{}, err
	}
	r, err := parseRef(u)
	if err != nil {
		return "", ref{}, err
	}
	return refStr, r, nil
}
