package awskms

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

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

// CreateOptions says what key CreateKey makes.
type CreateOptions struct {
	// Curve is signer.Secp256k1 (ECC_SECG_P256K1: tz2 and Ethereum) or signer.P256 (ECC_NIST_P256: tz3).
	Curve signer.Curve
	// Alias names the key ("alias/NAME" or "NAME"); empty makes a key without an alias, named by its ARN.
	Alias string
	// Region is the AWS region; empty uses the AWS configuration chain.
	Region string
	// Endpoint overrides the KMS endpoint: a URL, or HOST:PORT (http for loopback, https otherwise).
	Endpoint string
	// Description is stored with the key; empty gets a default naming keyward and the curve.
	Description string
	// Seal makes a symmetric SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT key, the
	// kind local key files are sealed with (keys generate --seal-with),
	// instead of a signing key; Curve is then ignored.
	Seal bool
}

// ErrAliasExists means the alias CreateKey was asked for already names a
// key; nothing was created.
var ErrAliasExists = errors.New("alias already exists")

// CreateKey creates a KMS signing key (KeySpec for opts.Curve, KeyUsage
// SIGN_VERIFY, tagged keyward=true), gives it opts.Alias, and opens it. It
// returns the key reference to put in keyward's configuration
// ("awskms:///alias/NAME?region=R", or "awskms://127.0.0.1:PORT/alias/NAME"
// for a loopback endpoint) and the opened key.
//
// With opts.Seal it creates a symmetric sealing key instead and returns its
// reference and a nil key. Before anything is created the alias is looked
// up: an alias already in use is ErrAliasExists (a key created and left
// without its alias would be billed and orphaned).
func CreateKey(ctx context.Context, opts CreateOptions) (string, signer.Key, error) {
	spec := types.KeySpecSymmetricDefault
	if !opts.Seal {
		var err error
		if spec, err = specForCurve(opts.Curve); err != nil {
			return "", nil, fmt.Errorf("awskms: create key: %w", err)
		}
	}
	alias := opts.Alias
	if alias != "" && !strings.HasPrefix(alias, "alias/") {
		alias = "alias/" + alias
	}
	if alias == "alias/" || strings.HasPrefix(alias, "alias/aws/") {
		return "", nil, fmt.Errorf("awskms: create key: %w: alias %q is empty or reserved by AWS", ErrBadRef, opts.Alias)
	}
	r := ref{region: opts.Region, timeout: DefaultTimeout}
	refHost, refQuery := "", url.Values{}
	if opts.Region != "" {
		refQuery.Set("region", opts.Region)
	}
	if ep := opts.Endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			ep = endpointForHost(ep)
		}
		pu, err := url.Parse(ep)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return "", nil, fmt.Errorf("awskms: create key: %w: endpoint %q is not an http(s) URL", ErrBadRef, opts.Endpoint)
		}
		r.endpoint = ep
		if endpointForHost(pu.Host) == ep || endpointForHost(pu.Host)+"/" == ep {
			refHost = pu.Host
		} else {
			refQuery.Set("endpoint", ep)
		}
	}
	c, err := newClient(ctx, r)
	if err != nil {
		return "", nil, fmt.Errorf("awskms: create key: %w", err)
	}
	return createKey(ctx, c, spec, alias, opts, refHost, refQuery)
}

func createKey(ctx context.Context, c KMSClient, spec types.KeySpec, alias string, opts CreateOptions, refHost string, refQuery url.Values) (string, signer.Key, error) {
	desc := opts.Description
	usage := types.KeyUsageTypeSignVerify
	switch {
	case opts.Seal:
		usage = types.KeyUsageTypeEncryptDecrypt
		if desc == "" {
			desc = "keyward key-file sealing key"
		}
	case desc == "":
		desc = fmt.Sprintf("keyward %v signing key", opts.Curve)
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	if alias != "" {
		d, err := c.DescribeKey(cctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)}, withDeadline(cctx))
		var notFound *types.NotFoundException
		switch {
		case err == nil:
			id := ""
			if d.KeyMetadata != nil {
				id = aws.ToString(d.KeyMetadata.KeyId)
			}
			return "", nil, fmt.Errorf("awskms: create key: %w: %s names key %s; nothing was created (choose another alias)", ErrAliasExists, alias, id)
		case !errors.As(err, &notFound):
			return "", nil, fmt.Errorf("awskms: create key: looking up %s first: %w", alias, classify(err))
		}
	}
	out, err := c.CreateKey(cctx, &kms.CreateKeyInput{
		KeySpec:     spec,
		KeyUsage:    usage,
		Description: aws.String(desc),
		Tags:        []types.Tag{{TagKey: aws.String(TagKey), TagValue: aws.String(TagValue)}},
	}, withDeadline(cctx))
	if err != nil {
		return "", nil, fmt.Errorf("awskms: KMS CreateKey: %w", classify(err))
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.KeyId) == "" {
		return "", nil, fmt.Errorf("awskms: KMS CreateKey: %w: no key id in the answer", signer.ErrUnavailable)
	}
	keyID := aws.ToString(out.KeyMetadata.KeyId)
	name := keyID
	if alias != "" {
		if _, err := c.CreateAlias(cctx, &kms.CreateAliasInput{
			AliasName:   aws.String(alias),
			TargetKeyId: aws.String(keyID),
		}, withDeadline(cctx)); err != nil {
			return "", nil, fmt.Errorf("awskms: KMS CreateAlias %s for new key %s (the key exists without the alias): %w", alias, keyID, classify(err))
		}
		name = alias
	}
	refStr := Scheme + "://" + refHost + "/" + name
	if len(refQuery) > 0 {
		refStr += "?" + refQuery.Encode()
	}
	if opts.Seal {
		return refStr, nil, nil
	}
	u, err := signer.ParseURI(refStr)
	if err != nil {
		return "", nil, err
	}
	r, err := parseRef(u)
	if err != nil {
		return "", nil, err
	}
	k, err := openKey(ctx, r, c)
	if err != nil {
		return "", nil, err
	}
	return refStr, k, nil
}
