package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"time"
)

// Sign returns the X-Vigil-Signature value for a body signed at ts:
// "v1=" + hex(HMAC-SHA256(secret, decimal(ts) + "." + body)).
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a webhook request's X-Vigil-Timestamp and
// X-Vigil-Signature headers against its raw body, as a receiver would: the
// signature must match in constant time and the timestamp be within
// maxSkew of now.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("malformed timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return errors.New("timestamp outside the allowed window")
	}
	want := Sign(secret, ts, body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return errors.New("signature mismatch")
	}
	return nil
}

// maxResponse bounds how much of a receiver's answer is read (and thrown
// away) so the connection can be reused.
const maxResponse = 64 << 10

// newHTTPClient returns the client every webhook uses: dials through the
// policy, no proxy (a proxy would connect on our behalf, past the check),
// no redirects, and TLS verified against roots (nil: the system's).
func newHTTPClient(p *Policy, o *Options) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func permanent(err error, format string, args ...any) *SendError {
	return &SendError{Msg: fmt.Sprintf(format, args...), Permanent: true, Err: err}
}

func temporary(err error, format string, args ...any) *SendError {
	return &SendError{Msg: fmt.Sprintf(format, args...), Err: err}
}

// send makes one delivery attempt to c. The error is a *SendError.
func (n *Notifier) send(ctx context.Context, c *Channel, d *Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	now := n.opts.Now()
	var body []byte
	var err error
	switch c.Kind {
	case KindEmail:
		return n.sendEmail(ctx, c, d, now)
	case KindWebhook:
		body, err = renderWebhook(d, now)
	case KindSlack:
		body, err = renderSlack(&d.Message)
	case KindTeams:
		body, err = renderTeams(&d.Message)
	case KindMattermost:
		body, err = renderMattermost(&d.Message)
	default:
		return permanent(nil, "unknown channel kind %q", c.Kind)
	}
	if err != nil {
		return permanent(err, "rendering the message failed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(err, "invalid channel URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil-Notify/1")
	if c.Kind == KindWebhook {
		ts := now.Unix()
		req.Header.Set("X-Vigil-Event", string(d.Message.Event))
		req.Header.Set("X-Vigil-Delivery", strconv.FormatInt(d.ID, 10))
		req.Header.Set("X-Vigil-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Vigil-Signature", Sign([]byte(c.Secret), ts, body))
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return classifyDial(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return nil
	case s >= 300 && s <= 399:
		return permanent(nil, "the receiver answered %d (a redirect, which is never followed)", s)
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return temporary(nil, "the receiver answered %d", s)
	default:
		return permanent(nil, "the receiver answered %d", s)
	}
}

// classifyDial turns a transport error into a SendError that names the
// problem without the URL (which may hold a token).
func classifyDial(err error) *SendError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, ErrBlocked):
		return permanent(err, "%s", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return temporary(err, "timed out")
	case errors.Is(err, context.Canceled):
		return temporary(err, "cancelled")
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return temporary(err, "TLS certificate not trusted: %v", ce.Err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return temporary(err, "timed out")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return temporary(err, "connection failed: %s", oe.Err.Error())
	}
	return temporary(err, "connection failed")
}

// sendEmail delivers d to c's recipients over SMTP. STARTTLS is required
// (TLSStartTLS) unless the channel uses implicit TLS or, explicitly, none;
// credentials are only ever sent over TLS.
func (n *Notifier) sendEmail(ctx context.Context, c *Channel, d *Delivery, now time.Time) error {
	msg, err := renderEmail(c, d, now)
	if err != nil {
		return permanent(err, "rendering the email failed: %v", err)
	}
	host, _, err := net.SplitHostPort(c.SMTPAddr)
	if err != nil {
		return permanent(err, "invalid SMTP address")
	}
	conn, err := n.policy.DialContext(ctx, "tcp", c.SMTPAddr)
	if err != nil {
		return classifyDial(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tlsCfg := &tls.Config{ServerName: host, RootCAs: n.opts.RootCAs, MinVersion: tls.VersionTLS12}
	mode := c.SMTPTLS
	if mode == "" {
		mode = TLSStartTLS
	}
	if mode == TLSImplicit {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return classifyDial(err)
		}
		conn = tc
	}
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpError(err, "greeting")
	}
	defer cl.Close()
	if err := cl.Hello(n.opts.HeloName); err != nil {
		return smtpError(err, "EHLO")
	}
	if mode == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return permanent(nil, "the SMTP server does not offer STARTTLS, which this channel requires")
		}
		if err := cl.StartTLS(tlsCfg); err != nil {
			return smtpError(err, "STARTTLS")
		}
	}
	if c.Username != "" {
		if _, isTLS := cl.TLSConnectionState(); !isTLS {
			return permanent(nil, "refusing to send SMTP credentials without TLS")
		}
		if ok, _ := cl.Extension("AUTH"); !ok {
			return permanent(nil, "the SMTP server does not offer AUTH")
		}
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return smtpError(err, "AUTH")
		}
	}
	from, _ := mail.ParseAddress(c.From) // validated by renderEmail
	if err := cl.Mail(from.Address); err != nil {
		return smtpError(err, "MAIL FROM")
	}
	for _, to := range c.To {
		a, _ := mail.ParseAddress(to)
		if err := cl.Rcpt(a.Address); err != nil {
			return smtpError(err, "RCPT TO")
		}
	}
	w, err := cl.Data()
	if err != nil {
		return smtpError(err, "DATA")
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError(err, "DATA")
	}
	if err := w.Close(); err != nil {
		return smtpError(err, "end of DATA")
	}
	cl.Quit()
	return nil
}

// smtpError classifies an SMTP failure: 5xx replies are permanent, 4xx
// replies and connection problems temporary.
func smtpError(err error, step string) *SendError {
	var te *textproto.Error
	if errors.As(err, &te) {
		if te.Code >= 500 {
			return permanent(err, "the SMTP server refused %s: %d", step, te.Code)
		}
		return temporary(err, "the SMTP server deferred %s: %d", step, te.Code)
	}
	if se := classifyDial(err); se.Msg != "connection failed" {
		se.Msg = step + ": " + se.Msg
		return se
	}
	return temporary(err, "SMTP %s failed: %v", step, err)
}
