package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base32"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/web"
	"github.com/vigil-edr/vigil/internal/wire"
)

// Browser tests drive Debian's Chromium (scripts/test.sh installs it)
// against a real server. Without Chromium they skip, loudly, except under
// CI=true, where they fail.

// chromium returns the browser's path.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CHROMIUM MISSING under CI: scripts/test.sh should have installed it (apt-get install chromium)")
	}
	t.Skip("CHROMIUM MISSING: browser tests SKIPPED (apt-get install chromium)")
	return ""
}

// artifacts is where screenshots go: $VIGIL_ARTIFACTS/<test name>, or a
// temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("VIGIL_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab that records JavaScript errors,
// console errors (CSP violations among them) and every response's CSP.
type browser struct {
	ctx   context.Context
	t     *testing.T
	dir   string
	shots int

	mu     sync.Mutex
	errs   []string
	noCSP  []string
	marker string // a console message that means an injected script ran
	ran    []string
}

func newBrowser(t *testing.T, timeout time.Duration) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests run as root
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{ctx: ctx, t: t, dir: artifacts(t)}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.errs = append(b.errs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg := strings.Join(parts, " ")
			if b.marker != "" && strings.Contains(msg, b.marker) {
				b.ran = append(b.ran, msg)
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				b.errs = append(b.errs, "console.error: "+msg)
			}
		case *log.EventEntryAdded:
			// CSP violations and failed loads are browser log entries.
			if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				b.errs = append(b.errs, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *network.EventResponseReceived:
			if strings.HasPrefix(ev.Response.URL, "https://127.0.0.1") && !hasHeader(ev.Response.Headers, "Content-Security-Policy") {
				b.noCSP = append(b.noCSP, ev.Response.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hasHeader(h network.Headers, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + what)
		page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.mu.Lock()
		errs := strings.Join(b.errs, "\n")
		b.mu.Unlock()
		b.t.Fatalf("%s: %v\npage: %s\nbrowser errors:\n%s", what, err, page, errs)
	}
}

// shot saves a full-page screenshot as NN-name.png.
func (b *browser) shot(name string) {
	b.shots++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Error(err)
	}
}

// text returns the text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.shot("failed-text")
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// attr returns an attribute of the first element matching sel.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v.Value
}

// until waits for a JavaScript condition.
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[any](expr, chromedp.WithPollingTimeout(5*time.Second))(ctx, t)
		return err
	})
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// checkClean fails on any JavaScript error and any response without a CSP.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		b.t.Errorf("browser: %s", e)
	}
	for _, u := range b.noCSP {
		b.t.Errorf("response without Content-Security-Policy: %s", u)
	}
}

// consoleServer starts a real server with the given rule files and returns
// it with the admin API token and the admin's console password.
func consoleServer(t *testing.T, rules map[string]string) (*Server, string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range rules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	s, err := startServer(context.Background(), serverConfig{
		Data: t.TempDir(), Listen: "127.0.0.1:0", Rules: []string{dir}, Workers: 1, AdminToken: &out,
		Retention: time.Hour, MaxBytes: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var password, token string
	for i, l := range lines {
		if strings.HasPrefix(l, "Console:") && i+1 < len(lines) {
			password = strings.TrimSpace(lines[i+1])
		}
		if strings.HasPrefix(l, "Initial admin API token") && i+1 < len(lines) {
			token = strings.TrimSpace(lines[i+1])
		}
	}
	if password == "" || token == "" {
		t.Fatalf("no password or token in:\n%s", out.String())
	}
	return s, token, password
}

// signInFirstTime signs the admin in, enrolling TOTP as the first sign-in
// requires; it returns the enrolled secret.
func (b *browser) signInFirstTime(base, password string) []byte {
	b.t.Helper()
	b.run("login page",
		chromedp.Navigate(base+"/alerts"),
		visible("#user"),
		chromedp.SendKeys(chromedp.CSS("#user"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
	)
	b.shot("login")
	b.run("sign in", chromedp.Click(chromedp.CSS("#signin")), visible("#totp-secret"))
	secret := b.text("#totp-secret")
	b.shot("totp-enrolment")
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimSpace(secret))
	if err != nil || len(key) != 20 {
		b.t.Fatalf("TOTP secret %q: %v", secret, err)
	}
	totp := authz.NewTOTP(key)
	code := totp.CodeAt(totp.Step(time.Now()))
	b.run("enrol TOTP",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("#enrol")),
		visible(`nav a[href="/settings"]`),
	)
	return key
}

const whoamiRule = `title: Whoami run by a web server
id: 9a1f3c2e-0000-4000-8000-0000000000b1
status: test
description: A web server account ran whoami, typical after a web shell upload.
logsource:
  category: process_creation
  product: linux
detection:
  sel:
    Image|endswith: /whoami
    User: www-data
  condition: sel
level: high
tags:
  - attack.discovery
  - attack.t1033
`

// TestConsoleBrowser: sign in with TOTP enrolment, watch an alert raised by
// an enrolled agent's event appear live in the queue within 2 s, triage it
// with the keyboard (move, acknowledge, assign, select, suppress, false
// positive), open its detail (rule, condition, highlighted fields, process
// ancestry, host timeline). No JavaScript error, CSP on every response.
func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: runs in the integration step of scripts/test.sh")
	}
	s, admin, password := consoleServer(t, map[string]string{"whoami.yml": whoamiRule})
	b := newBrowser(t, 90*time.Second)
	base := "https://" + s.Addr().String()
	b.signInFirstTime(base, password)
	b.run("queue", chromedp.Navigate(base+"/alerts"), visible("#live.on"))
	b.shot("queue-empty")

	// An enrolled agent reports a process tree ending in whoami.
	c := enrolAgent(t, s, admin, "web-01")
	now := time.Now().UTC()
	proc := func(seq uint64, pid, ppid int, image, cmd, user string, at time.Time) wire.Event {
		ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: at}
		ev.Add("Image", image)
		ev.Add("CommandLine", cmd)
		ev.Add("ProcessId", fmt.Sprint(pid))
		ev.Add("ParentProcessId", fmt.Sprint(ppid))
		ev.Add("User", user)
		return wire.FromEvent(seq, ev)
	}
	batch := &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{
		proc(1, 900, 1, "/usr/sbin/apache2", "/usr/sbin/apache2 -k start", "root", now.Add(-3*time.Second)),
		proc(2, 1200, 900, "/usr/bin/dash", "sh -c whoami", "www-data", now.Add(-2*time.Second)),
		proc(3, 1201, 1200, "/usr/bin/whoami", "whoami", "www-data", now.Add(-time.Second)),
	}}
	send(t, c, batch)
	sent := time.Now()
	b.run("live alert", visible(`#queue-body tr[data-id]`))
	latency := time.Since(sent)
	t.Logf("alert visible in the queue %v after the agent's batch was acknowledged", latency)
	if latency > 2*time.Second {
		t.Errorf("alert took %v to appear live (want ≤ 2 s)", latency)
	}
	b.shot("queue-live-alert")

	id := b.attr(`#queue-body tr.current`, "data-id")
	b.run("keyboard: j, k, a, s",
		chromedp.KeyEvent("j"), chromedp.KeyEvent("k"),
		chromedp.KeyEvent("a"),
		visible(`#queue-body tr.current td.state-acknowledged`),
		chromedp.KeyEvent("s"),
		// The row is replaced as the API answers and the stream reports
		// the change, so both cells are read in one go.
		until(`(function () {
			const r = document.querySelector("#queue-body tr.current");
			return r && r.querySelector("td.state").textContent === "acknowledged" &&
				r.querySelector("td.assignee").textContent === "admin";
		})()`),
	)
	b.shot("queue-acknowledged-assigned")

	// Select it and suppress the rule for its host, with a reason.
	b.run("keyboard: x, u",
		chromedp.KeyEvent("x"),
		until(`document.getElementById("selcount").textContent === "1 selected"`),
		chromedp.KeyEvent("u"),
		visible("#reason-dialog[open]"),
		chromedp.SendKeys(chromedp.CSS("#reason"), "lab web server, expected"),
	)
	b.shot("suppress-dialog")
	b.run("suppress", chromedp.Click(chromedp.CSS("#reason-ok")),
		until(`(document.getElementById("toast")||{}).textContent === "Suppressed on 1 host"`))
	var sups struct {
		Items []struct {
			RuleID string `json:"rule_id"`
			Host   string `json:"host"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	if code := api(t, s, admin, "GET", "/api/v1/suppressions", nil, &sups); code != 200 || len(sups.Items) != 1 ||
		sups.Items[0].Host != "web-01" || sups.Items[0].Reason != "lab web server, expected" {
		t.Errorf("suppressions: %d %+v", code, sups)
	}

	// Open the detail (o), then close the alert as a false positive from there (f).
	b.run("open detail", chromedp.KeyEvent("o"), visible("#alert-detail"))
	ruleTitle, condition := b.text("#rule-title"), b.text("#rule-condition")
	matched, ancestry, timeline := b.text("#event-fields tr.match"), b.text("#ancestry"), b.text("#timeline")
	b.shot("alert-detail")
	if ruleTitle != "Whoami run by a web server" || condition != "sel" || !strings.Contains(matched, "/usr/bin/whoami") {
		t.Errorf("detail: rule %q condition %q matched %q", ruleTitle, condition, matched)
	}
	if !strings.Contains(ancestry, "apache2") || !strings.Contains(ancestry, "sh -c whoami") || strings.Index(ancestry, "apache2") > strings.Index(ancestry, "/usr/bin/whoami") {
		t.Errorf("ancestry: %q", ancestry)
	}
	if !strings.Contains(timeline, "apache2 -k start") {
		t.Errorf("timeline: %q", timeline)
	}
	b.run("false positive",
		chromedp.KeyEvent("f"),
		visible("#reason-dialog[open]"),
		chromedp.SendKeys(chromedp.CSS("#reason"), "admin testing"),
		chromedp.Click(chromedp.CSS("#reason-ok")),
		until(`document.getElementById("alert-state").textContent.startsWith("false_positive")`),
	)
	b.shot("alert-false-positive")
	var got struct {
		State    string `json:"state"`
		Reason   string `json:"reason"`
		Assignee string `json:"assignee"`
	}
	if code := api(t, s, admin, "GET", "/api/v1/alerts/"+id, nil, &got); code != 200 || got.State != "false_positive" ||
		got.Reason != "admin testing" || got.Assignee != "admin" {
		t.Errorf("alert after triage: %d %+v", code, got)
	}
	// Back in the queue (open alerts) it is gone.
	b.run("queue after", chromedp.Navigate(base+"/alerts"), visible("#empty"))
	b.shot("queue-after-triage")

	// The triage is in the audit log, by the signed-in user.
	var audit struct {
		Items []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
		} `json:"items"`
	}
	api(t, s, admin, "GET", "/api/v1/audit?limit=1000", nil, &audit)
	var acts []string
	for _, e := range audit.Items {
		if e.Actor == "user:admin" {
			acts = append(acts, e.Action)
		}
	}
	want := "login.ok console.login.totp.post api.alerts.state.post api.alerts.assign.post api.suppressions.post api.alerts.state.post"
	if strings.Join(acts, " ") != want {
		t.Errorf("audit actions of user:admin:\n%s\nwant\n%s", strings.Join(acts, " "), want)
	}
	b.checkClean()
	if cspOf(t, s, "/alerts") != web.ContentSecurityPolicy || cspOf(t, s, "/api/v1/alerts") != web.ContentSecurityPolicy {
		t.Error("CSP header missing")
	}
}

// cspOf returns the Content-Security-Policy of an unauthenticated GET.
func cspOf(t *testing.T, s *Server, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+path, nil)
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Content-Security-Policy")
}
