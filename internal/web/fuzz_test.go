package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeBody feeds arbitrary bytes to the body decoder of every request
// type: it must never panic and must fail only with an API *Error.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"state":"acknowledged"}`, `{"rule_id":"r","host":"h","reason":"x","expires_at":"2030-01-01T00:00:00Z"}`,
		`{"name":"n","role":"viewer"}`, `[[[[[[[[[[]]]]]]]]]]`, `{"text":"\"\\\u0000"}`, `{"a":1}{}`, ``, `{"note":"x","max_uses":1e400}`,
		`{"status":"closed","reason":"x","sent":{"gdpr_authority":null,"nis2_early_warning":"2026-01-01T00:00:00+01:00"}}`,
		`{"title":"t","alert_ids":[1,2,9223372036854775807]}`, `{"breach_aware_at":"0000-01-01T00:00:00Z"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dst := range []func() any{
			func() any { return &stateReq{} }, func() any { return &assignReq{} }, func() any { return &commentReq{} },
			func() any { return &enrollTokenReq{} }, func() any { return &suppressionReq{} }, func() any { return &tokenReq{} },
			func() any { return &caseCreateReq{} }, func() any { return &caseUpdateReq{} }, func() any { return &caseAlertsReq{} },
			func() any { return &evidenceReq{} },
		} {
			r := httptest.NewRequest("POST", "/", strings.NewReader(string(b)))
			r.Header.Set("Content-Type", "application/json")
			err := decodeBody(httptest.NewRecorder(), r, dst())
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Status() == http.StatusInternalServerError) {
				t.Fatalf("decode %q: %v", b, err)
			}
		}
	})
}
