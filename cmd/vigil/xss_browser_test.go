package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.yaml.in/yaml/v3"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/testkit"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// xssRule is a rule file whose title is the payload; it fires on
// /opt/xss-N.
func xssRule(n int, title string) string {
	doc := map[string]any{
		"title": title, "id": fmt.Sprintf("00000000-0000-4000-8000-%012d", n), "status": "test",
		"description": title,
		"logsource":   map[string]any{"category": "process_creation", "product": "linux"},
		"detection":   map[string]any{"sel": map[string]any{"Image|endswith": fmt.Sprintf("/xss-%d", n)}, "condition": "sel"},
		"level":       "high",
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestConsoleXSS: 200 XSS payloads in every attacker-controlled field — the
// rule title (rule files), the host name (200 agents enrolled with it), and
// the command line, file name and user name of each agent's event. The
// alerts arrive live in Chromium's queue (rendered by alerts.js), then the
// queue, 25 alert details (one per vector) and every page of the navigation are
// loaded: no script ran (no exception, no CSP violation, no console error)
// and, parsed on the server's side for all 200 details, every payload is
// text only.
func TestConsoleXSS(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: runs in the integration step of scripts/test.sh")
	}
	payloads := testkit.XSSPayloads()
	rules := map[string]string{}
	for i, p := range payloads {
		rules[fmt.Sprintf("xss-%03d.yml", i)] = xssRule(i, p)
	}
	s, admin, password := consoleServer(t, rules)
	if set := s.rules.Current(); len(set.Rejected) > 0 || len(set.Rules) != len(payloads) {
		t.Fatalf("rules: %d loaded, rejected %v", len(set.Rules), set.Rejected)
	}
	b := newBrowser(t, 120*time.Second)
	base := "https://" + s.Addr().String()
	b.signInFirstTime(base, password)
	b.run("queue", chromedp.Navigate(base+"/alerts"), visible("#live.on"))

	// 200 agents with hostile host names, each reporting one hostile event.
	start := time.Now()
	var tok struct {
		Secret string `json:"secret"`
	}
	if code := api(t, s, admin, "POST", "/api/v1/enrollment-tokens", map[string]any{"max_uses": len(payloads), "note": "xss"}, &tok); code != 201 {
		t.Fatalf("enrolment token: %d", code)
	}
	url := "https://" + s.Addr().String()
	errs := make(chan error, len(payloads))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs <- sendHostile(url, tok.Secret, s.auth.CAFingerprint(), i, payloads[i])
			}
		}()
	}
	for i := range payloads {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("200 agents enrolled and sent in %v", time.Since(start))
	mark := time.Now()
	b.run("live rows", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[any](`document.querySelectorAll("#queue-body tr[data-id]").length === 200`,
			chromedp.WithPollingTimeout(30*time.Second))(ctx, tg)
		return err
	}))
	t.Logf("200 alerts live in the queue %v after the last batch", time.Since(mark))
	b.shot("queue-live-xss")
	b.checkInert("live queue")

	var alerts struct {
		Items []struct {
			ID        int64  `json:"id"`
			RuleTitle string `json:"rule_title"`
			Host      string `json:"host"`
		} `json:"items"`
	}
	if code := api(t, s, admin, "GET", "/api/v1/alerts?limit=1000", nil, &alerts); code != 200 || len(alerts.Items) != 200 {
		t.Fatalf("alerts: %d, %d", code, len(alerts.Items))
	}
	byTitle := map[string]int64{}
	for _, a := range alerts.Items {
		byTitle[a.RuleTitle] = a.ID
	}

	// The server's HTML, parsed: the queue and every detail.
	sess := newTestSession(t, s, "admin")
	for _, p := range []string{"/alerts"} {
		checkServerHTML(t, s, sess, p, payloads...)
	}
	pages := make(chan string)
	var pw sync.WaitGroup
	for w := 0; w < 4; w++ {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for p := range pages {
				checkServerHTML(t, s, sess, fmt.Sprintf("/alerts/%d", byTitle[p]), p, testkit.Printable(p))
			}
		}()
	}
	for _, p := range payloads {
		if _, ok := byTitle[p]; !ok {
			t.Errorf("no alert titled %q", p)
			continue
		}
		pages <- p
	}
	close(pages)
	pw.Wait()

	t.Logf("server-side checks done at %v", time.Since(start))
	logPageTimes(t, s, admin)
	// In the browser: the rendered queue, 25 details (each vector once, in
	// varying contexts), every page of the navigation.
	b.run("queue rendered", chromedp.Navigate(base+"/alerts"), visible("#queue-body tr"))
	b.checkInert("rendered queue")
	for k := 0; k < 25; k++ { // k·41 mod 25 = k·16 mod 25: each vector once
		p := payloads[(k*41)%len(payloads)]
		b.run("detail", chromedp.Navigate(fmt.Sprintf("%s/alerts/%d", base, byTitle[p])), visible("#alert-detail"))
		if k == 0 {
			b.shot("detail-xss")
		}
	}
	b.checkInert("details")
	t.Logf("browser details done at %v", time.Since(start))
	navs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("nav a")).map(a => a.getAttribute("href"))`))
	if err != nil || len(navs) < 7 {
		t.Fatalf("nav links: %v %v", navs, err)
	}
	for _, href := range navs {
		b.run("nav "+href, chromedp.Navigate(base+href), visible("main"))
		checkServerHTML(t, s, sess, href)
	}
	b.shot("last-nav-page")
	b.checkInert("navigation pages")
	b.checkClean()
}

// checkInert fails if any injected script ran or was refused by the CSP.
func (b *browser) checkInert(what string) {
	b.t.Helper()
	ran, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`typeof window.__xss !== "undefined" || typeof window.__xssRan !== "undefined"`))
	if err != nil {
		b.t.Fatal(err)
	}
	if ran {
		b.t.Errorf("%s: an injected script defined a global", what)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		b.t.Errorf("%s: %s", what, e)
	}
	b.errs = nil
}

// newTestSession stores a console session for a user, as a sign-in would,
// and returns its cookie value.
func newTestSession(t *testing.T, s *Server, user string) string {
	t.Helper()
	secret, hash := authz.NewSessionSecret()
	now := time.Now().UTC()
	if err := s.db.CreateSession(context.Background(), authz.Session{Hash: hash, User: user, CSRF: authz.NewSecret(),
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// checkServerHTML fetches a page with the session and checks it with
// testkit.CheckInertHTML.
func checkServerHTML(t *testing.T, s *Server, session, path string, want ...string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+path, nil)
	req.AddCookie(&http.Cookie{Name: "__Host-vigil_session", Value: session})
	resp, err := pageClient(s).Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET %s: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		return
	}
	for _, p := range testkit.CheckInertHTML(string(body), want...) {
		t.Errorf("GET %.60s: %s", path, p)
	}
}

// sendHostile enrols an agent named after payload p and sends its one event.
func sendHostile(url, token, fingerprint string, i int, p string) error {
	ctx := context.Background()
	id, err := client.Enroll(ctx, url, token, client.Trust{CAFingerprint: fingerprint},
		client.HostInfo{Hostname: testkit.Printable(p), OS: "linux", Arch: "amd64", Version: "test"})
	if err != nil {
		return fmt.Errorf("enrol %d: %w", i, err)
	}
	c, err := client.New(url, id)
	if err != nil {
		return err
	}
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", fmt.Sprintf("/opt/xss-%d", i))
	ev.Add("CommandLine", p)
	ev.Add("TargetFilename", p)
	ev.Add("User", p)
	ev.Add("ParentImage", p)
	ev.Add("ProcessId", fmt.Sprint(4000+i))
	ev.Add("ParentProcessId", "1")
	body, err := wire.Encode(&wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}}, "zstd")
	if err != nil {
		return err
	}
	for {
		status, resp, retry, err := c.SendBatch(ctx, body, "zstd")
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			return nil
		}
		if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			return fmt.Errorf("send %d: %d %s", i, status, resp)
		}
		time.Sleep(max(retry, 20*time.Millisecond))
	}
}

// logPageTimes logs the server time of the console's pages from /metrics.
func logPageTimes(t *testing.T, s *Server, token string) {
	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}}}
	resp, err := hc.Do(req)
	if err != nil {
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "vigil_http_request_duration_seconds_sum{route=\"GET /alerts") ||
			strings.HasPrefix(l, "vigil_http_request_duration_seconds_count{route=\"GET /alerts") {
			t.Log(l)
		}
	}
}

var (
	pageClientsMu sync.Mutex
	pageClients   = map[*Server]*http.Client{}
)

// pageClient is one client (one TLS session pool) per server, not following
// redirects.
func pageClient(s *Server) *http.Client {
	pageClientsMu.Lock()
	defer pageClientsMu.Unlock()
	if c := pageClients[s]; c != nil {
		return c
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	pageClients[s] = c
	return c
}
