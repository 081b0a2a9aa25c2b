package transport_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/pki"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

// clock is a settable time source shared by the server under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// batch is one IngestBatch call.
type batch struct {
	agentID, encoding string
	body              []byte
}

// recorder is the test Ingester: it records calls and answers with a set
// status.
type recorder struct {
	mu      sync.Mutex
	calls   []batch
	status  int
	resp    []byte
	headers map[string]string
}

func (r *recorder) IngestBatch(_ context.Context, agentID string, body []byte, ce string) (int, []byte, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, batch{agentID, ce, bytes.Clone(body)})
	return r.status, r.resp, r.headers
}

func (r *recorder) Calls() []batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]batch(nil), r.calls...)
}

type env struct {
	t     *testing.T
	auth  *pki.Authority
	store transport.Store
	ing   *recorder
	clock *clock
	srv   *transport.Server
	url   string

	mu     sync.Mutex
	protos []string // "HTTP/2.0 TLS1.3" per request
}

type envConfig struct {
	clientAuth tls.ClientAuthType // default VerifyClientCertIfGiven
	listenAddr string             // default 127.0.0.1:0
	auth       *pki.Authority
	refresh    time.Duration
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, auth: cfg.auth, ing: &recorder{status: http.StatusAccepted, resp: []byte(`{"acked":1}`)}, clock: &clock{now: time.Now()}}
	if e.auth == nil {
		var err error
		if e.auth, err = pki.LoadOrCreate(t.TempDir(), nil); err != nil {
			t.Fatal(err)
		}
	}
	e.store = newStore(t)
	srv, err := transport.NewServer(transport.ServerOptions{
		Store: e.store, Authority: e.auth, Ingester: e.ing,
		RevocationRefresh: cfg.refresh, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	h := srv.Handler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.protos = append(e.protos, r.Proto+" "+tls.VersionName(r.TLS.Version))
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	if cfg.listenAddr != "" {
		l, err := net.Listen("tcp", cfg.listenAddr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", cfg.listenAddr, err)
		}
		hs.Listener.Close()
		hs.Listener = l
	}
	tc := e.auth.ServerTLSConfig()
	if cfg.clientAuth != 0 {
		tc.ClientAuth = cfg.clientAuth
	}
	// httptest adds its own certificate when Certificates is empty, and
	// crypto/tls prefers Certificates over GetCertificate for clients that
	// send no SNI (IP addresses): set ours.
	sc, err := e.auth.ServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tc.Certificates = []tls.Certificate{*sc}
	hs.TLS = tc
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

func (e *env) token(ttl time.Duration, maxUses int) string {
	e.t.Helper()
	tok, row := transport.NewToken(e.clock.Now(), ttl, maxUses, "test")
	if err := e.store.CreateEnrollToken(context.Background(), row); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

var info = client.HostInfo{Hostname: "web-01", OS: "linux", Arch: "amd64", Version: "0.1.0"}

func (e *env) enroll() *client.Identity {
	e.t.Helper()
	id, err := client.Enroll(context.Background(), e.url, e.token(time.Hour, 1), client.Trust{CAPool: e.auth.CAPool()}, info)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) client(id *client.Identity) *client.Client {
	e.t.Helper()
	c, err := client.New(e.url, id)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestEnrollSendHeartbeatRenew(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	id := e.enroll()
	if !uuidRE.MatchString(id.AgentID) {
		t.Errorf("agent id %q is not a UUIDv4", id.AgentID)
	}
	if id.Cert.URIs[0].String() != "vigil://agent/"+id.AgentID {
		t.Errorf("URI SAN %v", id.Cert.URIs)
	}
	a, err := e.store.GetAgent(ctx, id.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Hostname != "web-01" || a.OS != "linux" || a.Arch != "amd64" || a.Version != "0.1.0" || a.CertSerial != id.Cert.SerialNumber.Text(16) {
		t.Errorf("stored agent %+v", a)
	}

	c := e.client(id)
	// The body is opaque to transport: whatever it claims, the batch is
	// attributed to the certificate's agent.
	body := []byte(`{"agent_id":"someone-else"}`)
	status, resp, _, err := c.SendBatch(ctx, body, "zstd")
	if err != nil || status != http.StatusAccepted || string(resp) != `{"acked":1}` {
		t.Fatalf("SendBatch = %d %q %v", status, resp, err)
	}
	calls := e.ing.Calls()
	if len(calls) != 1 || calls[0].agentID != id.AgentID || calls[0].encoding != "zstd" || !bytes.Equal(calls[0].body, body) {
		t.Errorf("ingester calls %+v", calls)
	}

	// Batches update LastSeen at most every 5 s; heartbeats always do.
	sent := e.clock.Now()
	for _, step := range []struct {
		after time.Duration
		moves bool
	}{{time.Second, false}, {3 * time.Second, false}, {time.Second, true}} {
		e.clock.Advance(step.after)
		if status, _, _, err := c.SendBatch(ctx, body, "zstd"); err != nil || status != http.StatusAccepted {
			t.Fatalf("SendBatch = %d %v", status, err)
		}
		if step.moves {
			sent = e.clock.Now()
		}
		if a, _ := e.store.GetAgent(ctx, id.AgentID); !a.LastSeen.Equal(sent) {
			t.Errorf("after a batch %v later: LastSeen %v, want %v", step.after, a.LastSeen, sent)
		}
	}

	e.clock.Advance(time.Minute)
	hb, err := c.Heartbeat(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.ServerTime.Equal(e.clock.Now()) || hb.Renew || !hb.RenewAfter.Equal(id.Cert.NotAfter.Add(-10*24*time.Hour)) {
		t.Errorf("heartbeat %+v", hb)
	}
	if a, _ := e.store.GetAgent(ctx, id.AgentID); !a.LastSeen.Equal(e.clock.Now()) {
		t.Errorf("LastSeen %v, want %v", a.LastSeen, e.clock.Now())
	}

	// A heartbeat with health stores it, canonical; a bad one is refused
	// and changes nothing.
	e.clock.Advance(time.Minute)
	health := `{"time":"2026-12-02T14:00:00Z","cpu_percent":1.25,"rss_bytes":1000,"spool":{"records":3,"bytes":10,"dropped":0},
		"sensors":[{"name":"process","mechanism":"audit-netlink unicast","state":"running"}],"unknown":1}`
	if _, err := c.Heartbeat(ctx, []byte(health)); err != nil {
		t.Fatal(err)
	}
	a, _ = e.store.GetAgent(ctx, id.AgentID)
	if !a.HealthAt.Equal(e.clock.Now()) || !a.LastSeen.Equal(e.clock.Now()) ||
		!strings.Contains(string(a.Health), `"cpu_percent":1.25`) || strings.Contains(string(a.Health), "unknown") {
		t.Errorf("after a heartbeat with health: %s at %v, last seen %v", a.Health, a.HealthAt, a.LastSeen)
	}
	var ae *client.APIError
	e.clock.Advance(time.Minute)
	if _, err := c.Heartbeat(ctx, []byte(`{"time":"2026-12-02T14:00:00Z","rss_bytes":-1}`)); !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Errorf("heartbeat with bad health: %v, want bad_request", err)
	}
	if b, _ := e.store.GetAgent(ctx, id.AgentID); string(b.Health) != string(a.Health) || !b.LastSeen.Equal(e.clock.Now()) {
		t.Errorf("a refused heartbeat: health %s (want unchanged), last seen %v (want now)", b.Health, b.LastSeen)
	}

	renewed, err := c.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.AgentID != id.AgentID || renewed.Cert.SerialNumber.Cmp(id.Cert.SerialNumber) == 0 || renewed.Key.Equal(id.Key) {
		t.Errorf("renewal: id %s serial %v", renewed.AgentID, renewed.Cert.SerialNumber)
	}
	if a, _ := e.store.GetAgent(ctx, id.AgentID); a.CertSerial != renewed.Cert.SerialNumber.Text(16) || a.Hostname != "web-01" {
		t.Errorf("store after renewal %+v", a)
	}
	if status, _, _, err := c.SendBatch(ctx, []byte("x"), ""); err != nil || status != http.StatusAccepted {
		t.Fatalf("SendBatch after renewal = %d %v", status, err)
	}
	if calls := e.ing.Calls(); calls[len(calls)-1].agentID != id.AgentID {
		t.Errorf("after renewal attributed to %s", calls[len(calls)-1].agentID)
	}

	e.mu.Lock()
	for _, p := range e.protos {
		if p != "HTTP/2.0 TLS 1.3" {
			t.Errorf("request over %s", p)
		}
	}
	e.mu.Unlock()

	dir := filepath.Join(t.TempDir(), "id")
	if err := renewed.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "agent.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent.key: %v %v", fi.Mode(), err)
	}
	loaded, err := client.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.AgentID != id.AgentID || !loaded.Key.Equal(renewed.Key) || !loaded.Cert.Equal(renewed.Cert) || !loaded.CA.Equal(e.auth.CACert()) {
		t.Error("loaded identity differs from the saved one")
	}
	if status, _, _, err := e.client(loaded).SendBatch(ctx, []byte("y"), ""); err != nil || status != http.StatusAccepted {
		t.Errorf("loaded identity: %d %v", status, err)
	}
}

func TestEnrollPinnedFingerprint(t *testing.T) {
	e := newEnv(t, envConfig{})
	fp := strings.ToUpper(e.auth.CAFingerprint())
	id, err := client.Enroll(context.Background(), e.url, e.token(0, 0), client.Trust{CAFingerprint: fp}, info)
	if err != nil {
		t.Fatal(err)
	}
	if !id.CA.Equal(e.auth.CACert()) {
		t.Error("identity CA is not the server CA")
	}
}

func TestEnrollTokenRefused(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	expired := e.token(time.Minute, 0)
	e.clock.Advance(2 * time.Minute)
	revoked := e.token(time.Hour, 0)
	if err := e.store.RevokeEnrollToken(ctx, strings.Split(revoked, ".")[0]); err != nil {
		t.Fatal(err)
	}
	usedUp := e.token(time.Hour, 1)
	if _, err := client.Enroll(ctx, e.url, usedUp, client.Trust{CAPool: e.auth.CAPool()}, info); err != nil {
		t.Fatal(err)
	}
	good := e.token(time.Hour, 0)
	tokenID, _, _ := strings.Cut(good, ".")
	tests := map[string]string{
		"expired":      expired,
		"revoked":      revoked,
		"used up":      usedUp,
		"wrong secret": tokenID + ".AAAA",
		"unknown id":   "0000000000000000.secret",
		"no dot":       "justtext",
		"empty":        "",
	}
	for name, tok := range tests {
		_, err := client.Enroll(ctx, e.url, tok, client.Trust{CAPool: e.auth.CAPool()}, info)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "token_invalid" {
			t.Errorf("%s: %v", name, err)
		}
	}
	agents, _ := e.store.RevokedAgents(ctx)
	if len(agents) != 0 {
		t.Errorf("revoked agents %v", agents)
	}
}

// post sends a raw request with only the CA trusted (no client
// certificate) and returns the status and error code.
func (e *env) post(path, body string) (int, string) {
	e.t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.auth.CAPool()}, ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(e.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ae struct{ Code, Message string }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &ae); err != nil {
		e.t.Errorf("%s: error body %q is not JSON", path, b)
	}
	return resp.StatusCode, ae.Code
}

func TestEnrollBadRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	tok := e.token(time.Hour, 1)
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"not JSON", transport.PathEnroll, "{", 400, "bad_request"},
		{"bad CSR", transport.PathEnroll, `{"token":"` + tok + `","csr":"AAAA","hostname":"h","os":"linux","arch":"amd64","version":"1"}`, 400, "bad_request"},
		{"no hostname", transport.PathEnroll, `{"token":"` + tok + `","csr":"AAAA","os":"linux","arch":"amd64","version":"1"}`, 400, "bad_request"},
		{"too large", transport.PathEnroll, `{"token":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "too_large"},
		{"unknown path", "/agent/v1/nope", "{}", 404, "not_found"},
		{"events without certificate", transport.PathEvents, "{}", 401, "unauthenticated"},
		{"heartbeat without certificate", transport.PathHeartbeat, "{}", 401, "unauthenticated"},
		{"renew without certificate", transport.PathRenew, "{}", 401, "unauthenticated"},
	}
	for _, tt := range tests {
		if status, code := e.post(tt.path, tt.body); status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, code, tt.status, tt.code)
		}
	}
	// The token was not spent on the bad CSR.
	if _, err := client.Enroll(context.Background(), e.url, tok, client.Trust{CAPool: e.auth.CAPool()}, info); err != nil {
		t.Errorf("token spent by a refused request: %v", err)
	}

	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.auth.CAPool()}}}).Get(e.url + transport.PathEnroll)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// foreignIdentity returns an identity whose certificate is signed by
// signer for agentID but which trusts ca as the server CA.
func foreignIdentity(t *testing.T, signer *pki.Authority, agentID string, ca *x509.Certificate, validity time.Duration) *client.Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, _, _, err := signer.SignAgent(csr, agentID, validity)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &client.Identity{AgentID: agentID, Key: key, Cert: cert, CA: ca}
}

func TestAgentRoutesRefuseBadCertificates(t *testing.T) {
	// With the listener verifying client certificates (production) and
	// with it only requesting them, so the handler's own checks are tested.
	for _, mode := range []tls.ClientAuthType{tls.VerifyClientCertIfGiven, tls.RequestClientCert} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envConfig{clientAuth: mode})
			ctx := context.Background()
			good := e.enroll()

			other, err := pki.LoadOrCreate(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Another CA's certificate naming a real agent.
			wrongCA := foreignIdentity(t, other, good.AgentID, e.auth.CACert(), 0)
			wrongCA.CA = other.CACert() // check() wants the signer
			// The server's own certificate (our CA, ServerAuth only).
			sc, err := e.auth.ServerCertificate()
			if err != nil {
				t.Fatal(err)
			}

			tests := []struct {
				name string
				cert tls.Certificate
			}{
				{"other CA", tls.Certificate{Certificate: [][]byte{wrongCA.Cert.Raw}, PrivateKey: wrongCA.Key}},
				{"server certificate", tls.Certificate{Certificate: sc.Certificate, PrivateKey: sc.PrivateKey}},
			}
			for _, tt := range tests {
				hc := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
					RootCAs: e.auth.CAPool(), Certificates: []tls.Certificate{tt.cert},
				}}}
				for _, path := range []string{transport.PathEvents, transport.PathHeartbeat, transport.PathRenew} {
					resp, err := hc.Post(e.url+path, "application/octet-stream", strings.NewReader(`{"agent_id":"`+good.AgentID+`"}`))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusUnauthorized {
							t.Errorf("%s %s: status %d", tt.name, path, resp.StatusCode)
						}
					} else if mode == tls.RequestClientCert {
						t.Errorf("%s %s: %v (want a 401 from the handler)", tt.name, path, err)
					}
				}
				hc.CloseIdleConnections()
			}

			// Expired: the server's clock passes the certificate's end.
			c := e.client(good)
			e.clock.Advance(time.Until(good.Cert.NotAfter) + time.Minute)
			if status, _, _, err := c.SendBatch(ctx, []byte("x"), ""); err != nil || status != http.StatusUnauthorized {
				t.Errorf("expired certificate: %d %v", status, err)
			}
			if n := len(e.ing.Calls()); n != 0 {
				t.Errorf("ingester called %d times", n)
			}
		})
	}
}

func TestUnknownAgentRefused(t *testing.T) {
	e := newEnv(t, envConfig{})
	ghost := foreignIdentity(t, e.auth, "ghost", e.auth.CACert(), 0)
	status, resp, _, err := e.client(ghost).SendBatch(context.Background(), []byte("x"), "")
	if err != nil || status != http.StatusForbidden || !strings.Contains(string(resp), "agent_unknown") {
		t.Errorf("unknown agent: %d %s %v", status, resp, err)
	}
}

func TestRevocationWithinRefresh(t *testing.T) {
	const refresh = 10 * time.Second
	e := newEnv(t, envConfig{refresh: refresh})
	ctx := context.Background()
	id := e.enroll()
	c := e.client(id)
	if status, _, _, err := c.SendBatch(ctx, []byte("x"), ""); err != nil || status != http.StatusAccepted {
		t.Fatalf("before revocation: %d %v", status, err)
	}
	if err := e.store.RevokeAgent(ctx, id.AgentID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// Renewal reads the agent row, so it is refused at once.
	var ae *client.APIError
	if _, err := c.Renew(ctx); !errors.As(err, &ae) || ae.Code != "agent_revoked" {
		t.Errorf("renew after revocation: %v", err)
	}
	e.clock.Advance(refresh)
	status, resp, _, err := c.SendBatch(ctx, []byte("x"), "")
	if err != nil || status != http.StatusForbidden || !strings.Contains(string(resp), "agent_revoked") {
		t.Errorf("after refresh interval: %d %s %v", status, resp, err)
	}
	if _, err := c.Heartbeat(ctx, nil); !errors.As(err, &ae) || ae.Code != "agent_revoked" {
		t.Errorf("heartbeat after revocation: %v", err)
	}
	if n := len(e.ing.Calls()); n != 1 {
		t.Errorf("ingester called %d times, want 1", n)
	}
}

func TestRefreshRevocationsNow(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	id := e.enroll()
	c := e.client(id)
	if status, _, _, _ := c.SendBatch(ctx, nil, ""); status != http.StatusAccepted {
		t.Fatalf("status %d", status)
	}
	if err := e.store.RevokeAgent(ctx, id.AgentID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.RefreshRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if status, _, _, _ := c.SendBatch(ctx, nil, ""); status != http.StatusForbidden {
		t.Errorf("after RefreshRevocations: %d", status)
	}
}

func TestBatchLimitsAndPassThrough(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	c := e.client(e.enroll())
	status, resp, _, err := c.SendBatch(ctx, make([]byte, transport.MaxBatchBytes+1), "gzip")
	if err != nil || status != http.StatusRequestEntityTooLarge || !strings.Contains(string(resp), "too_large") {
		t.Errorf("oversized batch: %d %s %v", status, resp, err)
	}
	if status, _, _, err := c.SendBatch(ctx, make([]byte, transport.MaxBatchBytes), "gzip"); err != nil || status != http.StatusAccepted {
		t.Errorf("batch at the limit: %d %v", status, err)
	}
	e.ing.mu.Lock()
	e.ing.status, e.ing.resp, e.ing.headers = http.StatusTooManyRequests, []byte(`{"code":"busy"}`), map[string]string{"Retry-After": "7"}
	e.ing.mu.Unlock()
	status, resp, retry, err := c.SendBatch(ctx, []byte("x"), "")
	if err != nil || status != http.StatusTooManyRequests || retry != 7*time.Second || string(resp) != `{"code":"busy"}` {
		t.Errorf("backpressure: %d %s %v %v", status, resp, retry, err)
	}
}

func TestClientRefusesWrongHost(t *testing.T) {
	// The server certificate covers localhost, 127.0.0.1 and ::1; on
	// 127.0.0.2 it names the wrong host.
	e := newEnv(t, envConfig{listenAddr: "127.0.0.2:0"})
	ctx := context.Background()
	for name, trust := range map[string]client.Trust{
		"pool":        {CAPool: e.auth.CAPool()},
		"fingerprint": {CAFingerprint: e.auth.CAFingerprint()},
	} {
		if _, err := client.Enroll(ctx, e.url, e.token(time.Hour, 0), trust, info); !errors.Is(err, client.ErrUntrusted) {
			t.Errorf("%s: %v", name, err)
		}
	}
	id := foreignIdentity(t, e.auth, "a", e.auth.CACert(), 0)
	if _, _, _, err := e.client(id).SendBatch(ctx, []byte("x"), ""); !errors.Is(err, client.ErrUntrusted) {
		t.Errorf("SendBatch to the wrong host: %v", err)
	}
}

func TestClientRefusesOtherCA(t *testing.T) {
	e := newEnv(t, envConfig{})
	mine, err := pki.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, trust := range map[string]client.Trust{
		"pool":        {CAPool: mine.CAPool()},
		"fingerprint": {CAFingerprint: mine.CAFingerprint()},
	} {
		if _, err := client.Enroll(context.Background(), e.url, e.token(time.Hour, 0), trust, info); !errors.Is(err, client.ErrUntrusted) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := client.Enroll(context.Background(), e.url, "x.y", client.Trust{}, info); err == nil {
		t.Error("enrolment without any trust anchor accepted")
	}
	if _, err := client.Enroll(context.Background(), "http"+strings.TrimPrefix(e.url, "https"), "x.y", client.Trust{CAPool: e.auth.CAPool()}, info); err == nil {
		t.Error("plain http accepted")
	}
}

// newStore opens the real SQLite backend in a temporary directory.
func newStore(t testing.TB) transport.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
