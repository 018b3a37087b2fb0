package pgpool_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/pgpool"
)

// The pool's name is in every store error and log line: it must not carry
// the password, wherever the URL puts it (u.Redacted() hid only the
// userinfo's, so "?password=…" was printed in every store error).
func TestOpen_NameAndErrorsNeverEchoThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://keyward@127.0.0.1:1/kw?password=s3cret&call_timeout=bad",
		"postgres://keyward@127.0.0.1:1/kw?sslpassword=s3cret&sslmode=bogus",
		"postgres://keyward:s3cret@127.0.0.1:1/kw?sslmode=bogus",
		"postgres://keyward:s3/cret@127.0.0.1:1/kw",
		"postgresql://keyward@127.0.0.1:1/kw?PassWord=s3cret&call_timeout=200ms",
	} {
		p, err := pgpool.Open(ctx, dsn, nil)
		if err == nil {
			if strings.Contains(p.Name, "s3") {
				t.Errorf("%q: pool name %q echoes the password", dsn, p.Name)
			}
			p.Close()
			continue
		}
		if !errors.Is(err, pgpool.ErrConfig) && !strings.Contains(err.Error(), "127.0.0.1") {
			t.Logf("%q: %v", dsn, err)
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("%q: error %q echoes the password", dsn, err)
		}
	}
}
