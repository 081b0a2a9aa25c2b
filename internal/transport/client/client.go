// Package client is the agent side of the transport: enrolment with a token
// (the key is generated here and never leaves the host), the saved agent
// identity, and the mutually authenticated HTTPS client that sends event
// batches, heartbeats and certificate renewals.
//
// vigil-agent imports it; it imports only the standard library, so the
// agent binary links no server package. The protocol is described in
// docs/transport.md.
//
// # Trust
//
// The server is verified on every connection against the CA given to
// Enroll (a pool, or the SHA-256 fingerprint of the CA certificate that
// the operator copied from the server) and then against the CA saved in the
// identity; the server's certificate must name the host in the server URL.
// There is no trust on first use.
//
// # Concurrency
//
// A Client is safe for concurrent use; Renew swaps the identity used by
// later connections.
package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API paths, version 1.
const (
	pathEnroll    = "/agent/v1/enroll"
	pathRenew     = "/agent/v1/renew"
	pathEvents    = "/agent/v1/events"
	pathHeartbeat = "/agent/v1/heartbeat"
	pathActions   = "/agent/v1/actions"
	pathResult    = "/agent/v1/actions/result"
	pathFile      = "/agent/v1/actions/file"

	maxResponse = 1 << 20
)

// ErrUntrusted: the server's certificate does not chain to the trusted or
// pinned CA, or does not name the server host.
var ErrUntrusted = errors.New("client: server not trusted")

// APIError is an error answer of the server: {"code", "message"} and the
// HTTP status. Agents branch on Code (token_invalid, agent_revoked, …).
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Trust says how Enroll verifies the server: CAPool, or CAFingerprint
// (SHA-256 of the CA certificate DER, hex; colons and case ignored).
// Exactly one must be set.
type Trust struct {
	CAPool        *x509.CertPool
	CAFingerprint string
}

// HostInfo describes the endpoint at enrolment.
type HostInfo struct {
	Hostname string
	OS       string
	Arch     string
	Version  string
}

// Enroll generates an ECDSA P-256 key, sends a certificate request with the
// token and returns the new identity. The caller saves it with Save.
func Enroll(ctx context.Context, serverURL, token string, trust Trust, info HostInfo) (*Identity, error) {
	base, err := parseURL(serverURL)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	var pin []byte
	switch {
	case trust.CAPool != nil && trust.CAFingerprint == "":
		cfg.RootCAs = trust.CAPool
	case trust.CAPool == nil && trust.CAFingerprint != "":
		pin, err = hex.DecodeString(strings.ToLower(strings.ReplaceAll(trust.CAFingerprint, ":", "")))
		if err != nil || len(pin) != sha256.Size {
			return nil, errors.New("client: CA fingerprint must be 64 hex digits (SHA-256)")
		}
		// Verification is done by verifyPinned instead of the default
		// (which would need the CA in a pool): same checks, pinned root.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			_, err := verifyPinned(cs.PeerCertificates, pin, base.Hostname())
			return err
		}
	default:
		return nil, errors.New("client: set exactly one of Trust.CAPool and Trust.CAFingerprint")
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: info.Hostname}}, key)
	if err != nil {
		return nil, fmt.Errorf("client: certificate request: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"token": token, "csr": csr,
		"hostname": info.Hostname, "os": info.OS, "arch": info.Arch, "version": info.Version,
	})
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: newTransport(cfg), Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	resp, err := post(ctx, hc, base.JoinPath(pathEnroll).String(), body, "application/json", "")
	if err != nil {
		return nil, err
	}
	var cr certResponse
	if err := decode(resp, &cr); err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(cr.CACertificate)
	if err != nil {
		return nil, fmt.Errorf("client: CA certificate in answer: %w", err)
	}
	// The CA in the answer must be the one the connection was verified
	// against.
	if pin != nil {
		if sum := sha256.Sum256(ca.Raw); subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return nil, fmt.Errorf("%w: CA in the answer does not match the pinned fingerprint", ErrUntrusted)
		}
	} else {
		if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
			return nil, fmt.Errorf("%w: no verified chain", ErrUntrusted)
		}
		chain := resp.TLS.VerifiedChains[0]
		if !bytes.Equal(chain[len(chain)-1].Raw, ca.Raw) {
			return nil, fmt.Errorf("%w: CA in the answer is not the CA the server chains to", ErrUntrusted)
		}
	}
	id, err := newIdentity(cr, key, ca)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// verifyPinned verifies the server chain (leaf first) against the one
// certificate in it whose SHA-256 is pin, for host, and returns the root.
func verifyPinned(certs []*x509.Certificate, pin []byte, host string) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no server certificate", ErrUntrusted)
	}
	var root *x509.Certificate
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if sum := sha256.Sum256(c.Raw); subtle.ConstantTimeCompare(sum[:], pin) == 1 {
			root = c
		} else {
			inter.AddCert(c)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: the server's CA does not match the pinned fingerprint", ErrUntrusted)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	return root, nil
}

// certResponse is the answer to enrol and renew.
type certResponse struct {
	AgentID       string    `json:"agent_id"`
	Certificate   []byte    `json:"certificate"`
	CACertificate []byte    `json:"ca_certificate"`
	RenewAfter    time.Time `json:"renew_after"`
	// ActionKey is the server's Ed25519 key for response commands.
	ActionKey []byte `json:"action_key"`
}

func newIdentity(cr certResponse, key *ecdsa.PrivateKey, ca *x509.Certificate) (*Identity, error) {
	cert, err := x509.ParseCertificate(cr.Certificate)
	if err != nil {
		return nil, fmt.Errorf("client: certificate in answer: %w", err)
	}
	if len(cr.ActionKey) != 0 && len(cr.ActionKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("client: action key in answer is %d bytes, not an Ed25519 key", len(cr.ActionKey))
	}
	id := &Identity{AgentID: cr.AgentID, Key: key, Cert: cert, CA: ca, ActionKey: ed25519.PublicKey(cr.ActionKey)}
	if err := id.check(); err != nil {
		return nil, err
	}
	return id, nil
}

// Client talks to the server as an enrolled agent.
type Client struct {
	base *url.URL
	hc   *http.Client

	mu sync.Mutex
	id *Identity
}

// New returns a client for serverURL (https://host[:port]) using id.
func New(serverURL string, id *Identity) (*Client, error) {
	base, err := parseURL(serverURL)
	if err != nil {
		return nil, err
	}
	if err := id.check(); err != nil {
		return nil, err
	}
	c := &Client{base: base, id: id}
	roots := x509.NewCertPool()
	roots.AddCert(id.CA)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			id := c.Identity()
			return &tls.Certificate{Certificate: [][]byte{id.Cert.Raw}, PrivateKey: id.Key, Leaf: id.Cert}, nil
		},
	}
	c.hc = &http.Client{Transport: newTransport(cfg), Timeout: 2 * time.Minute}
	return c, nil
}

// Identity returns the identity in use (replaced by Renew).
func (c *Client) Identity() *Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// SendBatch posts one events batch (see docs/wire.md) and returns the
// server's status and body as they are, and the Retry-After delay if the
// server sent one. err is set only when there was no HTTP answer; the
// caller decides from status what to do with the batch.
func (c *Client) SendBatch(ctx context.Context, body []byte, contentEncoding string) (status int, resp []byte, retryAfter time.Duration, err error) {
	r, err := post(ctx, c.hc, c.base.JoinPath(pathEvents).String(), body, "application/octet-stream", contentEncoding)
	if err != nil {
		return 0, nil, 0, err
	}
	defer r.Body.Close()
	resp, err = io.ReadAll(io.LimitReader(r.Body, maxResponse))
	if err != nil {
		return r.StatusCode, nil, 0, fmt.Errorf("client: reading answer: %w", err)
	}
	return r.StatusCode, resp, parseRetryAfter(r.Header.Get("Retry-After"), time.Now()), nil
}

// HeartbeatReply is the server's answer to a heartbeat.
type HeartbeatReply struct {
	ServerTime time.Time `json:"server_time"`
	RenewAfter time.Time `json:"renew_after"`
	// Renew is true once the certificate should be renewed.
	Renew bool `json:"renew"`
}

// Heartbeat tells the server the agent is alive. health is the JSON body
// (the agent's wire.Health, at most 64 KiB); nil sends "{}".
func (c *Client) Heartbeat(ctx context.Context, health []byte) (HeartbeatReply, error) {
	var hr HeartbeatReply
	if health == nil {
		health = []byte("{}")
	}
	r, err := post(ctx, c.hc, c.base.JoinPath(pathHeartbeat).String(), health, "application/json", "")
	if err != nil {
		return hr, err
	}
	return hr, decode(r, &hr)
}

// Renew gets a certificate for a new key, for the same agent id, and uses
// it from now on. The caller saves the returned identity; until then a
// crash leaves the old identity on disk, which stays valid until it
// expires.
func (c *Client) Renew(ctx context.Context) (*Identity, error) {
	old := c.Identity()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: old.AgentID}}, key)
	if err != nil {
		return nil, fmt.Errorf("client: certificate request: %w", err)
	}
	body, _ := json.Marshal(map[string][]byte{"csr": csr})
	r, err := post(ctx, c.hc, c.base.JoinPath(pathRenew).String(), body, "application/json", "")
	if err != nil {
		return nil, err
	}
	var cr certResponse
	if err := decode(r, &cr); err != nil {
		return nil, err
	}
	if cr.AgentID != old.AgentID {
		return nil, fmt.Errorf("client: renewal answered agent id %q, not %q", cr.AgentID, old.AgentID)
	}
	if !bytes.Equal(cr.CACertificate, old.CA.Raw) {
		return nil, fmt.Errorf("%w: renewal answered a different CA", ErrUntrusted)
	}
	// An agent enrolled before actions existed learns the key here; a key
	// once learnt never changes.
	if len(old.ActionKey) != 0 && !bytes.Equal(cr.ActionKey, old.ActionKey) {
		return nil, fmt.Errorf("%w: renewal answered a different action key", ErrUntrusted)
	}
	id, err := newIdentity(cr, key, old.CA)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	// New connections present the new certificate.
	c.hc.CloseIdleConnections()
	return id, nil
}

func newTransport(cfg *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q must be https://host[:port]", s)
	}
	return u, nil
}

func post(ctx context.Context, hc *http.Client, u string, body []byte, contentType, contentEncoding string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		if errors.As(err, &uerr) || errors.As(err, &herr) {
			return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
		}
		return nil, err
	}
	return resp, nil
}

// decode reads a JSON answer into v, or the error body into an *APIError.
func decode(r *http.Response, v any) error {
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("client: reading answer: %w", err)
	}
	if r.StatusCode != http.StatusOK {
		ae := &APIError{Status: r.StatusCode}
		if json.Unmarshal(b, ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = "http_"+strconv.Itoa(r.StatusCode), strings.TrimSpace(string(b))
		}
		return ae
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("client: answer is not the expected JSON: %w", err)
	}
	return nil
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Delivery is one signed command from the action poll.
type Delivery struct {
	ID     string          `json:"id"`
	Signed json.RawMessage `json:"signed"`
}

// PollActions waits up to wait (at most 60 s) for response commands and
// returns them (docs/actions.md). They are not verified here: that is the
// agent's action package's job.
func (c *Client) PollActions(ctx context.Context, wait time.Duration) ([]Delivery, error) {
	u := c.base.JoinPath(pathActions)
	u.RawQuery = "wait=" + url.QueryEscape(wait.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	r, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	var out struct {
		Actions []Delivery `json:"actions"`
	}
	err = decode(r, &out)
	return out.Actions, err
}

// ReportResult posts one action result (JSON of command.Result).
func (c *Client) ReportResult(ctx context.Context, result []byte) error {
	r, err := post(ctx, c.hc, c.base.JoinPath(pathResult).String(), result, "application/json", "")
	if err != nil {
		return err
	}
	var v struct{}
	return decode(r, &v)
}

// UploadFile posts a collected file for action id and returns the SHA-256
// the server stored it under.
func (c *Client) UploadFile(ctx context.Context, id string, data []byte) (string, error) {
	u := c.base.JoinPath(pathFile)
	u.RawQuery = "id=" + url.QueryEscape(id)
	r, err := post(ctx, c.hc, u.String(), data, "application/octet-stream", "")
	if err != nil {
		return "", err
	}
	var out struct {
		SHA256 string `json:"sha256"`
	}
	err = decode(r, &out)
	return out.SHA256, err
}
