package notify_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and
// a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil notify test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mailMsg is one message the test SMTP server accepted.
type mailMsg struct {
	From     string
	To       []string
	Data     string
	TLS      bool   // the transaction ran over TLS
	AuthUser string // the AUTH PLAIN identity, if any
	AuthPass string
}

// smtpServer is a small real SMTP server (RFC 5321 subset): EHLO/HELO,
// STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA (with dot-unstuffing), RSET,
// NOOP, QUIT. It records accepted messages.
type smtpServer struct {
	t         *testing.T
	ln        net.Listener
	cert      tls.Certificate
	startTLS  bool // offer STARTTLS
	user      string
	pass      string
	mu        sync.Mutex
	msgs      []mailMsg
	plainAuth int // AUTH attempts made without TLS
	wg        sync.WaitGroup
}

func newSMTPServer(t *testing.T, cert tls.Certificate, startTLS bool, user, pass string) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{t: t, ln: ln, cert: cert, startTLS: startTLS, user: user, pass: pass}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) plainAuths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plainAuth
}

func (s *smtpServer) messages() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.msgs...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	isTLS := false
	var cur mailMsg
	authed := ""
	authPass := ""
	reply("220 test.local ESMTP ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ls := []string{"250-test.local"}
			if s.startTLS && !isTLS {
				ls = append(ls, "250-STARTTLS")
			}
			ls = append(ls, "250-AUTH PLAIN", "250 8BITMIME")
			reply(ls...)
		case "HELO":
			reply("250 test.local")
		case "STARTTLS":
			if !s.startTLS || isTLS {
				reply("454 TLS not available")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			c, isTLS = tc, true
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
			cur, authed = mailMsg{}, ""
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !isTLS {
				s.mu.Lock()
				s.plainAuth++
				s.mu.Unlock()
			}
			if !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported mechanism")
				continue
			}
			if resp == "" {
				reply("334 ")
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				resp = strings.TrimSpace(l)
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				reply("535 authentication failed")
				continue
			}
			authed, authPass = parts[1], parts[2]
			reply("235 ok")
		case "MAIL":
			if s.user != "" && authed == "" {
				reply("530 authentication required")
				continue
			}
			cur = mailMsg{From: strings.TrimPrefix(strings.SplitN(arg, " ", 2)[0], "FROM:"), TLS: isTLS, AuthUser: authed, AuthPass: authPass}
			reply("250 ok")
		case "RCPT":
			cur.To = append(cur.To, strings.TrimPrefix(arg, "TO:"))
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".")) // dot-unstuffing
			}
			cur.Data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			cur = mailMsg{}
			reply("250 queued")
		case "RSET":
			cur = mailMsg{}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}
