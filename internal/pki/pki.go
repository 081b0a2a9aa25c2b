// Package pki is the server's certificate authority: it creates (once) and
// loads a CA under the data directory, keeps a server TLS certificate for the
// configured hosts signed by that CA and renews it before it expires, and
// signs agent client certificates from certificate signing requests.
//
// Agent identity is set by the server, never by the agent: SignAgent writes
// the agent id into the subject CommonName and into a URI SAN
// vigil://agent/<id>, and keeps only the public key from the request.
// AgentID reads the identity back from a verified certificate.
//
// Only the server imports pki (transport, cmd/vigil). It uses the standard
// library only.
//
// # Files
//
// Under the data directory (created 0700): ca.key and server.key (PKCS#8
// PEM, 0600), ca.crt and server.crt (PEM, 0644). Keys are never logged or
// returned in errors.
//
// # Concurrency
//
// An Authority is safe for concurrent use. The server certificate is
// checked on every TLS handshake and renewed (and rewritten to disk) when it
// is within RenewWithin of expiry; handshakes during a renewal wait for it.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// CAValidity is the lifetime of a newly created CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity is the lifetime of a server certificate.
	ServerValidity = 365 * 24 * time.Hour
	// RenewWithin: the server certificate is renewed when it expires sooner
	// than this.
	RenewWithin = 30 * 24 * time.Hour
	// DefaultAgentValidity is used by SignAgent for a zero validity.
	DefaultAgentValidity = 30 * 24 * time.Hour
	// AgentURIPrefix starts the URI SAN naming an agent.
	AgentURIPrefix = "vigil://agent/"

	// backdate tolerates small clock differences between server and agent.
	backdate = 5 * time.Minute

	caKeyFile      = "ca.key"
	caCertFile     = "ca.crt"
	serverKeyFile  = "server.key"
	serverCertFile = "server.crt"
)

var (
	// ErrBadCSR: the request does not parse, its signature does not verify
	// or its key type is not accepted.
	ErrBadCSR = errors.New("pki: invalid certificate signing request")
	// ErrBadAgentID: the agent id is empty or has characters other than
	// letters, digits, '-' and '_' (at most 64).
	ErrBadAgentID = errors.New("pki: invalid agent id")
	// ErrNotAgentCert: the certificate does not name an agent consistently
	// (CommonName and vigil://agent URI SAN) or lacks the ClientAuth usage.
	ErrNotAgentCert = errors.New("pki: not an agent certificate")
)

// Authority is the server CA plus the current server certificate.
type Authority struct {
	dir    string
	hosts  []string
	caCert *x509.Certificate
	caKey  crypto.Signer
	pool   *x509.CertPool
	now    func() time.Time

	mu     sync.Mutex
	server *tls.Certificate // Leaf is set
}

// LoadOrCreate loads the CA under dir, creating it on first use, and makes
// sure there is a server certificate for hosts (names or IP addresses; plus
// localhost, 127.0.0.1 and ::1) that is not within RenewWithin of expiry.
func LoadOrCreate(dir string, hosts []string) (*Authority, error) {
	return loadOrCreate(dir, hosts, time.Now)
}

func loadOrCreate(dir string, hosts []string, now func() time.Time) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	a := &Authority{dir: dir, now: now, hosts: normaliseHosts(hosts)}
	if err := a.loadOrCreateCA(); err != nil {
		return nil, err
	}
	a.pool = x509.NewCertPool()
	a.pool.AddCert(a.caCert)
	if err := a.loadServer(); err != nil {
		return nil, err
	}
	if _, err := a.serverCert(); err != nil {
		return nil, err
	}
	return a, nil
}

func normaliseHosts(hosts []string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range hosts {
		h = strings.TrimSpace(strings.ToLower(h))
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func (a *Authority) path(name string) string { return filepath.Join(a.dir, name) }

func (a *Authority) loadOrCreateCA() error {
	certPEM, certErr := os.ReadFile(a.path(caCertFile))
	keyPEM, keyErr := os.ReadFile(a.path(caKeyFile))
	switch {
	case certErr == nil && keyErr == nil:
		cert, key, err := parsePair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("pki: CA in %s: %w", a.dir, err)
		}
		if !cert.IsCA {
			return fmt.Errorf("pki: %s is not a CA certificate", a.path(caCertFile))
		}
		if a.now().After(cert.NotAfter) {
			return fmt.Errorf("pki: CA certificate expired on %s; agents must be re-enrolled with a new CA", cert.NotAfter.Format(time.DateOnly))
		}
		a.caCert, a.caKey = cert, key
		return nil
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
	default:
		// One file without the other: refuse rather than replace a CA
		// that agents already trust.
		return fmt.Errorf("pki: CA in %s is incomplete (%v, %v); restore both %s and %s", a.dir, certErr, keyErr, caCertFile, caKeyFile)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Vigil CA", Organization: []string{"Vigil"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	// Key first: a crash between the two writes leaves an incomplete CA
	// that LoadOrCreate refuses, never a certificate without its key.
	if err := writeKey(a.path(caKeyFile), key); err != nil {
		return err
	}
	if err := writeCert(a.path(caCertFile), der); err != nil {
		return err
	}
	a.caCert, a.caKey = cert, key
	return nil
}

// loadServer reads the stored server certificate if it exists, parses and
// was signed by the current CA; otherwise it leaves a.server nil.
func (a *Authority) loadServer() error {
	certPEM, err1 := os.ReadFile(a.path(serverCertFile))
	keyPEM, err2 := os.ReadFile(a.path(serverKeyFile))
	if err1 != nil || err2 != nil {
		return nil
	}
	cert, key, err := parsePair(certPEM, keyPEM)
	if err != nil || cert.CheckSignatureFrom(a.caCert) != nil {
		return nil // replaced by serverCert
	}
	a.server = &tls.Certificate{Certificate: [][]byte{cert.Raw, a.caCert.Raw}, PrivateKey: key, Leaf: cert}
	return nil
}

// serverCert returns the current server certificate, renewing it when it
// is missing, near expiry or does not cover every host.
func (a *Authority) serverCert() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.server != nil && now.Add(RenewWithin).Before(a.server.Leaf.NotAfter) && a.covers(a.server.Leaf) {
		return a.server, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: a.hosts[len(a.hosts)-1], Organization: []string{"Vigil"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     minTime(now.Add(ServerValidity), a.caCert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range a.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, key.Public(), a.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse server certificate: %w", err)
	}
	if err := writeKey(a.path(serverKeyFile), key); err != nil {
		return nil, err
	}
	if err := writeCert(a.path(serverCertFile), der); err != nil {
		return nil, err
	}
	a.server = &tls.Certificate{Certificate: [][]byte{der, a.caCert.Raw}, PrivateKey: key, Leaf: leaf}
	return a.server, nil
}

func (a *Authority) covers(c *x509.Certificate) bool {
	for _, h := range a.hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// CACert returns the CA certificate. The caller must not modify it.
func (a *Authority) CACert() *x509.Certificate { return a.caCert }

// CAPool returns a new pool holding only the CA certificate.
func (a *Authority) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.caCert)
	return p
}

// CAFingerprint is the SHA-256 of the CA certificate's DER, lower-case hex.
// Agents pin it when enrolling.
func (a *Authority) CAFingerprint() string { return Fingerprint(a.caCert.Raw) }

// Fingerprint is the SHA-256 of der, lower-case hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ServerCertificate returns the current server certificate (chain: server,
// CA), renewing it first if it is within RenewWithin of expiry.
func (a *Authority) ServerCertificate() (*tls.Certificate, error) { return a.serverCert() }

// ServerTLSConfig is the listener configuration: TLS 1.3 only, HTTP/2 and
// HTTP/1.1, the server certificate (renewed as needed on each handshake) and
// client certificates verified against the CA when given
// (tls.VerifyClientCertIfGiven). Enrolment needs no client certificate;
// the agent routes check the verified identity themselves.
func (a *Authority) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.serverCert()
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  a.CAPool(),
	}
}

// SignAgent signs csrDER (an x509 certificate request in DER) as the client
// certificate of agentID. Only the request's public key is used: the
// subject CommonName and the URI SAN vigil://agent/<agentID> come from
// agentID, the only extended key usage is ClientAuth. A zero or negative
// validity means DefaultAgentValidity; the certificate never outlives the
// CA. serial is the certificate's serial number in lower-case hex
// (big.Int.Text(16), no leading zeros).
func (a *Authority) SignAgent(csrDER []byte, agentID string, validity time.Duration) (certDER []byte, serial string, notAfter time.Time, err error) {
	if !ValidAgentID(agentID) {
		return nil, "", time.Time{}, ErrBadAgentID
	}
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if validity <= 0 {
		validity = DefaultAgentValidity
	}
	now := a.now()
	sn := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: agentID, Organization: []string{"Vigil agent"}},
		URIs:         []*url.URL{AgentURI(agentID)},
		NotBefore:    now.Add(-backdate),
		NotAfter:     minTime(now.Add(validity), a.caCert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, csr.PublicKey, a.caKey)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("pki: sign agent certificate: %w", err)
	}
	return der, sn.Text(16), tmpl.NotAfter.UTC().Truncate(time.Second), nil
}

// ParseCSR parses a DER certificate request, verifies its signature and
// checks its key: ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or
// more. Errors wrap ErrBadCSR.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// VerifyAgent checks that chain[0] is an agent certificate issued by this
// CA and valid at now (intermediates in chain are ignored: the CA signs
// agents directly), and returns its agent id.
func (a *Authority) VerifyAgent(chain []*x509.Certificate, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", fmt.Errorf("%w: no client certificate", ErrNotAgentCert)
	}
	leaf := chain[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       a.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotAgentCert, err)
	}
	return AgentID(leaf)
}

// AgentID returns the agent id named by c: its CommonName, which must equal
// the id in its only vigil://agent URI SAN. It does not verify the chain.
func AgentID(c *x509.Certificate) (string, error) {
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		return "", fmt.Errorf("%w: extended key usage must be ClientAuth only", ErrNotAgentCert)
	}
	var fromURI string
	n := 0
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, AgentURIPrefix) {
			fromURI = strings.TrimPrefix(s, AgentURIPrefix)
			n++
		}
	}
	cn := c.Subject.CommonName
	if n != 1 || fromURI != cn || !ValidAgentID(cn) {
		return "", fmt.Errorf("%w: CommonName and %s URI disagree", ErrNotAgentCert, AgentURIPrefix)
	}
	return cn, nil
}

// AgentURI is the URI SAN that names agent id.
func AgentURI(id string) *url.URL { return &url.URL{Scheme: "vigil", Host: "agent", Path: "/" + id} }

// ValidAgentID reports whether id is 1–64 letters, digits, '-' or '_'.
func ValidAgentID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return errors.New("ECDSA key must use P-256 or P-384")
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return errors.New("RSA key shorter than 2048 bits")
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

func randomSerial() *big.Int {
	// 128 random bits, positive; rand.Int never fails with crypto/rand.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("pki: crypto/rand: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("certificate file is not PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("key file is not PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, errors.New("key file does not parse as PKCS#8") // no key material in errors
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("key is not a signing key")
	}
	pubDER, err1 := x509.MarshalPKIXPublicKey(signer.Public())
	certPub, err2 := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err1 != nil || err2 != nil || !bytes.Equal(pubDER, certPub) {
		return nil, nil, errors.New("key does not match certificate")
	}
	return cert, signer, nil
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: marshal key for %s: %w", path, err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically (temporary file, fsync, rename) with
// the given mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: close %s: %w", path, err)
	}
	ok = true
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
