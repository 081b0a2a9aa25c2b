package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

// The marker an injected script would print, and payloads that would
// print it if they were ever rendered as markup.
const (
	xssMarker = "vigil-xss-ran"
	xssHost   = `<img src=x onerror=console.log("vigil-xss-ran")>`
	xssTitle  = `"><svg onload=console.log("vigil-xss-ran")>`
	xssRemedy = `<script>console.log("vigil-xss-ran")</script>`
)

// sendHygieneInputs sends, as an enrolled agent, one SCA scan (two failed
// checks with hostile titles and remediation, one passed) and a process
// tree that raises the whoami alert, all through ingest and the pipeline.
func sendHygieneInputs(t *testing.T, c *client.Client) {
	t.Helper()
	now := time.Now().UTC()
	scan := now.Add(-time.Minute)
	sca := func(seq uint64, cat string, kv ...string) wire.Event {
		ev := &event.Event{Product: "linux", Categories: []string{cat}, Time: scan}
		ev.Add("ScanId", "scan-1")
		ev.Add("PolicyId", "vigil_debian12")
		for i := 0; i+1 < len(kv); i += 2 {
			ev.Add(kv[i], kv[i+1])
		}
		return wire.FromEvent(seq, ev)
	}
	proc := func(seq uint64, pid, ppid int, image, cmd, user string) wire.Event {
		ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: now}
		ev.Add("Image", image)
		ev.Add("CommandLine", cmd)
		ev.Add("ProcessId", fmt.Sprint(pid))
		ev.Add("ParentProcessId", fmt.Sprint(ppid))
		ev.Add("User", user)
		return wire.FromEvent(seq, ev)
	}
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{
		sca(1, "sca_result", "CheckId", "90001", "Title", xssTitle, "Status", "failed", "Reason", "PermitRootLogin yes",
			"Remediation", xssRemedy+" Set PermitRootLogin no", "Compliance", `{"cis_csc_v8":["5.4"],"nis2":["21(2)(i)"],"gdpr":["32(1)(b)"]}`),
		sca(2, "sca_result", "CheckId", "90020", "Title", "A host firewall is enabled", "Status", "failed", "Reason", "no nftables ruleset",
			"Remediation", "Enable nftables", "Compliance", `{"cis_csc_v8":["4.5","12.2"],"nis2":["21(2)(g)"]}`),
		sca(3, "sca_result", "CheckId", "90030", "Title", "auditd is installed", "Status", "passed", "Reason", "found",
			"Compliance", `{"cis_csc_v8":["8.2"],"gdpr":["32(1)(d)"]}`),
		sca(4, "sca_summary", "PolicyName", "Vigil baseline", "Passed", "1", "Failed", "2", "NotApplicable", "0", "Total", "3",
			"Score", "33", "Applicable", "true"),
		proc(5, 1200, 900, "/usr/bin/dash", "sh -c whoami", "www-data"),
		proc(6, 1201, 1200, "/usr/bin/whoami", "whoami", "www-data"),
	}})
}

// rawGet fetches path with the token and returns the status, headers and body.
func rawGet(t *testing.T, s *Server, token, path string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.auth.CAPool(), ServerName: "127.0.0.1"}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// waitHygiene polls the host's score until it has configuration and alert
// deductions.
func waitHygiene(t *testing.T, s *Server, admin string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var hosts struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		api(t, s, admin, "GET", "/api/v1/hosts", nil, &hosts)
		if len(hosts.Items) == 1 {
			id := hosts.Items[0].ID
			var v hygiene.HostView
			api(t, s, admin, "GET", "/api/v1/hosts/"+id+"/hygiene", nil, &v)
			if v.ByCategory[hygiene.CatConfig] > 0 && v.ByCategory[hygiene.CatAlerts] > 0 {
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hygiene deductions within 20 s (hosts %+v)", hosts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHygieneReportBrowser: an enrolled agent whose host name and check
// title are payloads sends an SCA scan and raises an alert; the fleet and
// host reports downloaded from the API render in Chromium from disk (as a
// user would open them) with no console error, no CSP violation and no
// payload running; the console's Hygiene page and the host page show the
// score and the download links. Screenshots are the test's artifacts.
func TestHygieneReportBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: runs in the integration step of scripts/test.sh")
	}
	s, admin, password := consoleServer(t, map[string]string{"whoami.yml": whoamiRule})
	b := newBrowser(t, 90*time.Second)
	b.marker = xssMarker
	c := enrolAgent(t, s, admin, xssHost)
	sendHygieneInputs(t, c)
	id := waitHygiene(t, s, admin)
	if n, err := s.hygiene.Snapshot(context.Background()); err != nil || n != 2 {
		t.Fatalf("snapshot: %d points, %v (want the host's and the fleet's)", n, err)
	}

	for name, path := range map[string]string{"fleet": "/api/v1/hygiene/report", "host": "/api/v1/hygiene/report?host=" + id} {
		st, hdr, body := rawGet(t, s, admin, path)
		if st != 200 || hdr.Get("Content-Security-Policy") != hygiene.ReportCSP || !strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("%s report: %d %v", name, st, hdr)
		}
		for _, raw := range []string{xssHost, xssTitle, xssRemedy} {
			if bytes.Contains(body, []byte(raw)) {
				t.Errorf("%s report holds %q unescaped", name, raw)
			}
		}
		file := filepath.Join(b.dir, "hygiene-report-"+name+".html")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		b.run(name+" report", chromedp.Navigate("file://"+file), visible("#score"), visible("#trend"), visible("#vuln-chart"))
		if got := b.text("#report-title"); !strings.Contains(got, xssHost) && name == "host" {
			t.Errorf("host report title %q does not show the host name as text", got)
		}
		want := []string{"configuration (mean over 1 host)", "alerts (mean over 1 host)"}
		if name == "host" {
			want = []string{"failed high-severity configuration check", "open high alert"}
		}
		if d := b.text("#deductions"); !strings.Contains(d, want[0]) || !strings.Contains(d, want[1]) {
			t.Errorf("%s deductions: %q", name, d)
		}
		b.shot("hygiene-report-" + name)
	}

	base := "https://" + s.Addr().String()
	b.signInFirstTime(base, password)
	b.run("hygiene page", chromedp.Navigate(base+"/hygiene"), visible("#hygiene-hosts"), visible("#fleet-report"), visible("#hygiene-trend"))
	if href := b.attr("#hygiene-hosts a[download]", "href"); href != "/api/v1/hygiene/report?host="+id {
		t.Errorf("host report link %q", href)
	}
	b.shot("console-hygiene")
	b.run("host page", chromedp.Navigate(base+"/hosts/"+id), visible("#host-hygiene"), visible("#host-report"))
	b.shot("console-host-hygiene")
	b.run("overview", chromedp.Navigate(base+"/"), visible("#overview-report"))

	b.mu.Lock()
	ran := b.ran
	b.mu.Unlock()
	if len(ran) > 0 {
		t.Errorf("an injected script ran: %v", ran)
	}
	b.checkClean()
}

// TestReportCLI: vigil report writes the fleet's and a host's report
// from a server's data directory; a bad host or format is refused.
func TestReportCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	s, admin, _ := consoleServer(t, map[string]string{"whoami.yml": whoamiRule})
	c := enrolAgent(t, s, admin, xssHost)
	sendHygieneInputs(t, c)
	id := waitHygiene(t, s, admin)
	data := s.cfg.Data
	out := filepath.Join(t.TempDir(), "r.html")
	for _, args := range [][]string{
		{"report", "--format", "html", "--data", data, "-o", out},
		{"report", "--format", "html", "--host", id, "--data", data, "-o", out, "--tz", "Europe/Paris"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		b, err := os.ReadFile(out)
		if err != nil || !bytes.Contains(b, []byte("Posture against frameworks")) || bytes.Contains(b, []byte(xssHost)) {
			t.Errorf("%v: %d bytes, %v", args, len(b), err)
		}
	}
	for _, args := range [][]string{
		{"report", "--format", "pdf", "--data", data, "-o", out},
		{"report", "--host", "nobody", "--data", data, "-o", out},
		{"report", "--data", t.TempDir(), "-o", out},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.ExecuteContext(context.Background()); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
