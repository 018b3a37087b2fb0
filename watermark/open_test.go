package watermark_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/watermark"
)

// Finding 4 of issue 11: a PostgreSQL URL that does not parse was quoted
// whole in the error, password included, twice (Open's message and
// net/url's). Every watermark URL is printed through RedactURL.
func TestOpen_ErrorsNeverEchoThePassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://keyward:s3cret%zz@db/kw",
		"postgres://keyward:s3cret@db/kw\x7f",
		"postgresx://keyward:s3cret@db/kw",
		"pg://keyward@db/kw?password=s3cret",
		"host=db user=keyward password=s3cret dbname=kw",
		"host=db user=keyward password='s3cret word' dbname=kw",
	} {
		_, err := watermark.Open(context.Background(), raw)
		if err == nil {
			t.Errorf("%q: opened", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error %q echoes the password", raw, err)
		}
	}
}

func TestRedactURL_HidesPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://keyward:s3cret@db:5432/kw?sslmode=verify-full", "postgres://keyward:REDACTED@db:5432/kw?sslmode=verify-full"},
		{"postgres://keyward:s3cret%zz@db/kw", "postgres://keyward:REDACTED@db/kw"},
		{"postgres://keyward:s3@cret@db/kw", "postgres://keyward:REDACTED@db/kw"},
		{"postgresql://keyward@db/kw?password=s3cret&call_timeout=1s", "postgresql://keyward@db/kw?password=REDACTED&call_timeout=1s"},
		{"postgres://keyward@db/kw?PassWord=s3cret", "postgres://keyward@db/kw?PassWord=REDACTED"},
		{"postgres://keyward@db/kw?pass%77ord=s3cret", "postgres://keyward@db/kw?pass%77ord=REDACTED"},
		{"postgres://keyward@db/kw?sslpassword=s3cret", "postgres://keyward@db/kw?sslpassword=REDACTED"},
		{"postgres://keyward@db/kw?pass%zzword=s3cret", "postgres://keyward@db/kw?pass%zzword=REDACTED"},
		{"postgres://keyward@db/kw#s3cret", "postgres://keyward@db/kw#REDACTED"},
		{"postgres://keyward@db/kw", "postgres://keyward@db/kw"},
		{"file:///var/lib/keyward/watermarks", "file:///var/lib/keyward/watermarks"},
		{"host=db user=keyward password=s3cret dbname=kw", "host=db user=keyward password=REDACTED dbname=kw"},
		{"host=db password = 's3 cr\\'et' dbname=kw", "host=db password = REDACTED dbname=kw"},
		{"PASSWORD=s3cret host=db", "PASSWORD=REDACTED host=db"},
		{"sslpassword=s3cret", "sslpassword=REDACTED"},
		// A password written without %-escapes: the userinfo ends at the
		// last "@"; where "/", "?" or "#" come before it, nothing is printed.
		{"postgres://keyward:s3@cr+et==@db/kw", "postgres://keyward:REDACTED@db/kw"},
		{"postgres://keyward:s3/cr+et==@db/kw", "postgres://REDACTED"},
		{"postgres://keyward:s3?cr#et@db/kw?sslmode=disable", "postgres://REDACTED"},
		{"postgres://keyward:s3cret@db1:5432,db2:5432/kw?target_session_attrs=read-write", "postgres://keyward:REDACTED@db1:5432,db2:5432/kw?target_session_attrs=read-write"},
		{"postgres://db/kw?password=s3cret@x", "postgres://REDACTED"},
		{"postgres://keyward@db/kw?sslmode=disable&password=@000", "postgres://REDACTED"},
		{"postgres://keyward@db/kw?application_name=a@b", "postgres://REDACTED"},
	} {
		if got := watermark.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRedactURL: whatever the password holds, it is not printed, in a
// URL's userinfo (%-escaped or not), a password= query parameter or a
// key=value DSN.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"s3cret", "s3cret%zz", "a b", "it's", `back\slash`, "x@y", "p&q", "p#q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, password string) {
		if len(password) < 4 || strings.ContainsAny(password, "\x00\r\n") {
			t.Skip()
		}
		inputs := func(password string) []string {
			quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + "'"
			return []string{
				"postgres://keyward:" + strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23").Replace(password) + "@db/kw",
				"postgres://keyward:" + password + "@db/kw?sslmode=disable", // written without %-escapes
				"postgres://keyward@db/kw?sslmode=disable&password=" + strings.NewReplacer("&", "%26", "#", "%23").Replace(password),
				"host=db user=keyward password=" + quoted + " dbname=kw",
			}
		}
		for i, in := range inputs(password) {
			if strings.Contains(watermark.RedactURL(inputs("x")[i]), password) {
				continue // the password is a piece of the rest of the URL
			}
			if out := watermark.RedactURL(in); strings.Contains(out, password) {
				t.Fatalf("RedactURL(%q) = %q", in, out)
			}
		}
	})
}
