package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/pki"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

// FuzzEnrollBody: any body gets an answer from the error table (or 200),
// never a panic or a 500.
func FuzzEnrollBody(f *testing.F) {
	auth, err := pki.LoadOrCreate(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	st := newStore(f)
	now := time.Now()
	tok, row := transport.NewToken(now, 0, 0, "fuzz")
	if err := st.CreateEnrollToken(context.Background(), row); err != nil {
		f.Fatal(err)
	}
	srv, err := transport.NewServer(transport.ServerOptions{Store: st, Authority: auth, Ingester: &recorder{status: 200}})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	good, _ := json.Marshal(map[string]any{"token": tok, "csr": csr, "hostname": "h", "os": "linux", "arch": "arm64", "version": "1"})
	f.Add(string(good))
	f.Add(`{"token":"a.b","csr":"AAAA"}`)
	f.Add(`{"token":1}`)
	f.Add(`[]`)
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, transport.PathEnroll, strings.NewReader(body)))
		switch w.Code {
		case 200, 400, 401, 413:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != 200 {
			var e struct{ Code string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code == "" {
				t.Fatalf("error body %q", w.Body)
			}
		}
	})
}

// Agents racing for the last use of a token: exactly one enrols.
func TestTokenLastUseRace(t *testing.T) {
	e := newEnv(t, envConfig{})
	tok := e.token(time.Hour, 1)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.Enroll(context.Background(), e.url, tok, client.Trust{CAPool: e.auth.CAPool()}, info)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d enrolments succeeded with a one-use token", ok, n)
	}
	agents, err := e.store.ListAgents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 {
		t.Errorf("%d agents stored, want 1", len(agents))
	}
}
