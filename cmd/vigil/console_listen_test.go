package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/web"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn and its
// key as PEM files, returning their paths and the certificate.
func writeCert(t *testing.T, dir, cn string) (certPath, keyPath string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ = x509.ParseCertificate(der)
	return certPath, keyPath, cert
}

// TestConsoleOwnCertificate: --console-listen serves the console with the
// user's certificate, picks up a renewed one, and bad flag combinations
// are refused at start.
func TestConsoleOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, cert := writeCert(t, dir, "console-one")
	var out bytes.Buffer
	s, err := startServer(context.Background(), serverConfig{Data: t.TempDir(), Listen: "127.0.0.1:0", Rules: []string{"../../rules"},
		Workers: 1, AdminToken: &out, Retention: time.Hour, MaxBytes: 1 << 30,
		ConsoleListen: "127.0.0.1:0", ConsoleCert: certPath, ConsoleKey: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(want *x509.Certificate) {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AddCert(want)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := hc.Get("https://" + s.conAddr.String() + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy ||
			resp.TLS.PeerCertificates[0].Subject.CommonName != want.Subject.CommonName {
			t.Errorf("console listener: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}
	get(cert)
	// A renewal replaces the files; the next connection gets the new one.
	time.Sleep(10 * time.Millisecond)
	newCert, newKey, cert2 := writeCert(t, t.TempDir(), "console-two")
	for _, p := range [][2]string{{newCert, certPath}, {newKey, keyPath}} {
		b, _ := os.ReadFile(p[0])
		os.WriteFile(p[1], b, 0o600)
	}
	get(cert2)

	for _, c := range []struct {
		cfg  serverConfig
		want string
	}{
		{serverConfig{ConsoleCert: certPath}, "go together"},
		{serverConfig{ConsoleCert: certPath, ConsoleKey: keyPath}, "needs --console-listen"},
		{serverConfig{ConsoleListen: "127.0.0.1:0", ConsoleCert: keyPath, ConsoleKey: keyPath}, "console certificate"},
	} {
		c.cfg.Data = t.TempDir()
		if _, err := startServer(context.Background(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
