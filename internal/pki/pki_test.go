package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func newCSR(t *testing.T, cn string, uris ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"evil.example"}}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadOrCreateFilesAndReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := LoadOrCreate(dir, []string{"vigil.example.org", "10.0.0.7", ""})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{caKeyFile: 0o600, serverKeyFile: 0o600, caCertFile: 0o644, serverCertFile: 0o644}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", name, got, want)
		}
	}
	ca := a.CACert()
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA: IsCA=%v alg=%v", ca.IsCA, ca.PublicKeyAlgorithm)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < CAValidity {
		t.Errorf("CA lifetime %v", life)
	}
	sc, err := a.ServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"vigil.example.org", "10.0.0.7", "localhost", "127.0.0.1", "::1"} {
		if err := sc.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("server cert does not cover %s: %v", h, err)
		}
	}
	if _, err := sc.Leaf.Verify(x509.VerifyOptions{Roots: a.CAPool(), DNSName: "vigil.example.org"}); err != nil {
		t.Errorf("server cert does not verify: %v", err)
	}

	b, err := LoadOrCreate(dir, []string{"vigil.example.org", "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	if b.CAFingerprint() != a.CAFingerprint() {
		t.Error("reload created a new CA")
	}
	sc2, _ := b.ServerCertificate()
	if sc2.Leaf.SerialNumber.Cmp(sc.Leaf.SerialNumber) != 0 {
		t.Error("reload replaced a valid server certificate")
	}
	// A new host makes a new server certificate under the same CA.
	c, err := LoadOrCreate(dir, []string{"other.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	sc3, _ := c.ServerCertificate()
	if sc3.Leaf.VerifyHostname("other.example.org") != nil || c.CAFingerprint() != a.CAFingerprint() {
		t.Error("new host not covered, or CA changed")
	}
}

func TestIncompleteCARefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, caKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, nil); err == nil {
		t.Fatal("a CA certificate without its key was replaced silently")
	}
}

func TestServerCertificateRenewal(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	a, err := loadOrCreate(t.TempDir(), []string{"vigil.test"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.ServerCertificate()
	now = first.Leaf.NotAfter.Add(-RenewWithin - time.Hour)
	same, _ := a.ServerCertificate()
	if same != first {
		t.Error("renewed too early")
	}
	now = first.Leaf.NotAfter.Add(-RenewWithin + time.Hour)
	cfg := a.ServerTLSConfig()
	renewed, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("not renewed within 30 days of expiry")
	}
	if !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Error("renewed certificate does not outlive the old one")
	}
	// The renewal is on disk.
	b, err := loadOrCreate(a.dir, []string{"vigil.test"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.ServerCertificate(); got.Leaf.SerialNumber.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Error("renewed certificate not persisted")
	}
}

func TestSignAgentIgnoresRequestedNames(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	csr := newCSR(t, "admin", "vigil://agent/someone-else")
	der, serial, notAfter, err := a.SignAgent(csr, "agent-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "agent-1" || len(c.URIs) != 1 || c.URIs[0].String() != "vigil://agent/agent-1" {
		t.Errorf("subject %q URIs %v", c.Subject.CommonName, c.URIs)
	}
	if len(c.DNSNames) != 0 || len(c.IPAddresses) != 0 {
		t.Errorf("requested SANs copied: %v %v", c.DNSNames, c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.IsCA {
		t.Errorf("EKU %v IsCA %v", c.ExtKeyUsage, c.IsCA)
	}
	if serial != c.SerialNumber.Text(16) {
		t.Errorf("serial %s, cert %s", serial, c.SerialNumber.Text(16))
	}
	if !notAfter.Equal(c.NotAfter) {
		t.Errorf("notAfter %v, cert %v", notAfter, c.NotAfter)
	}
	if d := time.Until(c.NotAfter); d < DefaultAgentValidity-time.Minute || d > DefaultAgentValidity {
		t.Errorf("default validity gives %v", d)
	}
	id, err := a.VerifyAgent([]*x509.Certificate{c}, time.Now())
	if err != nil || id != "agent-1" {
		t.Errorf("VerifyAgent = %q, %v", id, err)
	}
	if _, err := a.VerifyAgent([]*x509.Certificate{c}, c.NotAfter.Add(time.Second)); !errors.Is(err, ErrNotAgentCert) {
		t.Errorf("expired certificate: %v", err)
	}
	sc, _ := a.ServerCertificate()
	if _, err := a.VerifyAgent([]*x509.Certificate{sc.Leaf}, time.Now()); !errors.Is(err, ErrNotAgentCert) {
		t.Errorf("server certificate accepted as agent: %v", err)
	}
	other, _ := LoadOrCreate(t.TempDir(), nil)
	if _, err := other.VerifyAgent([]*x509.Certificate{c}, time.Now()); !errors.Is(err, ErrNotAgentCert) {
		t.Errorf("certificate from another CA accepted: %v", err)
	}
}

func TestSignAgentRejects(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	csr := newCSR(t, "x")
	bad := slices.Clone(csr)
	bad[len(bad)-3] ^= 0xff // inside the signature
	tests := []struct {
		name string
		csr  []byte
		id   string
		want error
	}{
		{"garbage", []byte("nope"), "a", ErrBadCSR},
		{"bad signature", bad, "a", ErrBadCSR},
		{"empty id", csr, "", ErrBadAgentID},
		{"id with slash", csr, "a/../b", ErrBadAgentID},
	}
	for _, tt := range tests {
		if _, _, _, err := a.SignAgent(tt.csr, tt.id, time.Hour); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestAgentIDMismatch(t *testing.T) {
	u, _ := url.Parse("vigil://agent/b")
	c := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "a"},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if _, err := AgentID(c); !errors.Is(err, ErrNotAgentCert) {
		t.Errorf("CN/URI mismatch accepted: %v", err)
	}
	c.Subject.CommonName = "b"
	if id, err := AgentID(c); err != nil || id != "b" {
		t.Errorf("AgentID = %q, %v", id, err)
	}
}
