package awskms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// KMSClient is the part of the AWS KMS API keyward uses. *kms.Client
// implements it; tests substitute a small fake.
type KMSClient interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	CreateAlias(ctx context.Context, in *kms.CreateAliasInput, optFns ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMSClient = (*kms.Client)(nil)

// Retry settings of the SDK's standard retryer. The per-call deadline bounds
// the total anyway (see deadlineRetryer).
const (
	maxAttempts = 5
	maxBackoff  = 2 * time.Second
)

// fallbackRegion signs requests to an overridden endpoint when no region is
// configured anywhere; local emulators ignore it.
const fallbackRegion = "us-east-1"

// ErrNoRegion means neither the reference nor the AWS configuration chain names a region.
var ErrNoRegion = errors.New("no AWS region: add ?region= to the key reference or set AWS_REGION")

// newClient builds a KMS client for r from the standard AWS configuration
// chain, with the SDK's standard retryer (exponential backoff with jitter,
// longer for throttling). optFns apply last (tests swap the HTTP client).
func newClient(ctx context.Context, r ref, optFns ...func(*kms.Options)) (*kms.Client, error) {
	var opts []func(*config.LoadOptions) error
	if r.region != "" {
		opts = append(opts, config.WithRegion(r.region))
	}
	if r.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(r.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if r.endpoint == "" {
			return nil, ErrNoRegion
		}
		cfg.Region = fallbackRegion
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if r.endpoint != "" {
			o.BaseEndpoint = aws.String(r.endpoint)
		}
		o.Retryer = newStandardRetryer()
	}, func(o *kms.Options) {
		for _, fn := range optFns {
			fn(o)
		}
	}), nil
}

func newStandardRetryer() aws.RetryerV2 {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
	})
}

// withDeadline returns per-call options that make the client's retryer stop
// retrying when the next backoff would end after ctx's deadline: the call
// then returns the last error at once instead of sleeping into the deadline.
// Fakes ignore the options.
func withDeadline(ctx context.Context) func(*kms.Options) {
	return func(o *kms.Options) {
		dl, ok := ctx.Deadline()
		if !ok || o.Retryer == nil {
			return
		}
		base, ok := o.Retryer.(aws.RetryerV2)
		if !ok {
			return
		}
		o.Retryer = &deadlineRetryer{RetryerV2: base, deadline: dl}
	}
}

// errRetryPastDeadline is joined to the last error when the retryer gives up
// because the next backoff would pass the deadline.
var errRetryPastDeadline = errors.New("not retrying: the backoff would pass the call's deadline")

// deadlineRetryer wraps the standard retryer for one call (one Attempt loop,
// never used concurrently). The SDK asks for a retry token before the delay;
// deadlineRetryer computes the delay there and refuses the token when the
// delay would end past the deadline, so no quota is spent on a retry that
// cannot finish.
type deadlineRetryer struct {
	aws.RetryerV2
	deadline time.Time
	attempts int
	delay    time.Duration
	haveNext bool
}

func (d *deadlineRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	d.attempts++
	return d.RetryerV2.GetAttemptToken(ctx)
}

func (d *deadlineRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	delay, err := d.RetryerV2.RetryDelay(d.attempts, opErr)
	if err != nil {
		return nil, err
	}
	if !time.Now().Add(delay).Before(d.deadline) {
		return nil, errRetryPastDeadline
	}
	d.delay, d.haveNext = delay, true
	return d.RetryerV2.GetRetryToken(ctx, opErr)
}

func (d *deadlineRetryer) RetryDelay(attempt int, opErr error) (time.Duration, error) {
	if d.haveNext {
		d.haveNext = false
		return d.delay, nil
	}
	return d.RetryerV2.RetryDelay(attempt, opErr)
}
