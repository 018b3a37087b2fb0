package remotesigner

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzSignBody sends arbitrary bodies to POST /keys/{pkh}: the handler never
// panics, answers a known status, and a 200 only ever carries a signature
// for a payload the decoder accepted.
func FuzzSignBody(f *testing.F) {
	fx := newFixture(f, nil)
	k := fx.tz2()
	for _, seed := range []string{`"050005"`, `"03"`, `"13"`, `""`, `5`, `{}`, `"zz"`, `"0100"`, `"` + "11" + `"`} {
		f.Add([]byte(seed))
	}
	h := fx.srv.Config.Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/keys/"+k.PKH, bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 403, 409, 413:
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
		if w.Code != 200 && bytes.Contains(w.Body.Bytes(), []byte(`"signature"`)) {
			t.Fatalf("refusal carries a signature: %s", w.Body)
		}
	})
}
