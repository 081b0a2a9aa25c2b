package hygiene_test

import (
	"bytes"
	"context"
	html_ "html"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// Hostile strings an agent, a package database or a policy could carry.
const (
	xssHost  = `<script>alert("host")</script>`
	xssPkg   = `<img src=x onerror=alert("pkg")>`
	xssTitle = `"><svg onload=alert("title")>`
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// fill stores two hosts through the real paths: agents, SCA events
// through sca.Recorder, findings as the vulnerability evaluator stores
// them, an alert and a case through the case service.
func fill(t *testing.T) (*sqlite.DB, *hygiene.Service) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []transport.Agent{
		{ID: "agent-a", Hostname: xssHost, OS: "linux", EnrolledAt: now.Add(-48 * time.Hour), LastSeen: now.Add(-time.Minute), CertNotAfter: now.Add(time.Hour)},
		{ID: "agent-b", Hostname: "db-01", OS: "linux", EnrolledAt: now.Add(-48 * time.Hour), LastSeen: now.Add(-30 * time.Hour), CertNotAfter: now.Add(time.Hour)},
	} {
		must(db.PutAgent(ctx, a))
	}
	scan := now.Add(-time.Hour)
	result := func(id int64, title, status, compliance string) *event.Event {
		ev := &event.Event{Time: scan, Product: "linux", Categories: []string{sca.CategoryResult}}
		for _, kv := range [][2]string{{"ScanId", "s1"}, {"PolicyId", "vigil_debian12"}, {"CheckId", itoa(id)}, {"Title", title},
			{"Status", status}, {"Reason", "PermitRootLogin yes <b>found</b>"}, {"Remediation", "Set PermitRootLogin no in /etc/ssh/sshd_config"},
			{"Compliance", compliance}} {
			ev.Add(kv[0], kv[1])
		}
		return ev
	}
	sum := &event.Event{Time: scan, Product: "linux", Categories: []string{sca.CategorySummary}}
	for _, kv := range [][2]string{{"ScanId", "s1"}, {"PolicyId", "vigil_debian12"}, {"PolicyName", "Vigil baseline"}, {"Passed", "1"},
		{"Failed", "2"}, {"NotApplicable", "0"}, {"Total", "3"}, {"Score", "33"}, {"Applicable", "true"}} {
		sum.Add(kv[0], kv[1])
	}
	rec := &sca.Recorder{Store: db}
	must(rec.AfterStore(ctx, []eventstore.Stored{
		{AgentID: "agent-a", Seq: 1, Event: result(1, xssTitle, "failed", `{"cis_csc_v8":["5.4"],"nis2":["21(2)(i)"],"gdpr":["32(1)(b)"]}`)},
		{AgentID: "agent-a", Seq: 2, Event: result(2, "The firewall drops incoming traffic by default", "failed", `{"cis_csc_v8":["4.5","12.2"],"nis2":["21(2)(g)"]}`)},
		{AgentID: "agent-a", Seq: 3, Event: result(3, "auditd is installed", "passed", `{"cis_csc_v8":["8.2"],"gdpr":["32(1)(d)"]}`)},
		{AgentID: "agent-a", Seq: 4, Event: sum},
	}))
	must(db.ReplaceFindings(ctx, "agent-a", vuln.Evaluation{SnapshotID: "snap", Generation: 1, EvaluatedAt: now.Add(-time.Hour), Ecosystem: "Debian:12"},
		[]vuln.Finding{
			{Source: "osv", AdvisoryID: "DSA-5532-1", Aliases: []string{"CVE-2023-5678"}, Package: xssPkg, Binaries: []string{"libssl3"}, Installed: "3.0.11-1~deb12u1",
				Affected: "< 3.0.11-1~deb12u2", Fixed: "3.0.11-1~deb12u2", Severity: vuln.Severity{Level: vuln.Critical},
				Why: xssPkg + " 3.0.11-1~deb12u1 (source of libssl3) is before the fixed 3.0.11-1~deb12u2 of DSA-5532-1 for Debian 12"},
			{Source: "osv", AdvisoryID: "DSA-9-1", Package: "curl", Installed: "7.88.1-10", Affected: "all versions", Severity: vuln.Severity{Level: vuln.Medium},
				Why: "curl 7.88.1-10 is affected by DSA-9-1 for Debian 12 (all versions; no fix yet)"},
		}))
	a := &alert.Alert{RuleID: "r1", RuleTitle: `Whoami by <i>www-data</i>`, Level: "high", Tags: []string{"attack.discovery"}, Host: xssHost, AgentID: "agent-a",
		State: alert.StateNew, Count: 2, FirstSeen: now.Add(-2 * time.Hour), LastSeen: now.Add(-time.Hour)}
	must(db.CreateAlert(ctx, a))
	cs := cases.NewService(cases.Options{Store: db, Alerts: db, Now: func() time.Time { return now.Add(-90 * time.Minute) }})
	c, err := cs.Create(ctx, cases.NewCase{Title: `Web shell on <script>x</script>`, AlertIDs: []int64{a.ID}}, "analyst")
	must(err)
	breach := true
	_, err = cs.Update(ctx, c.ID, cases.Change{Breach: &breach}, "analyst")
	must(err)
	svc := hygiene.NewService(hygiene.Options{Hosts: db, SCA: db, Vulns: db, Alerts: db, Cases: db, Store: db, Now: func() time.Time { return now }})
	return db, svc
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestReport renders the fleet and one host's report from a real store:
// scores, deductions, trend, checks with remediation, findings with their
// why, alerts, cases and the framework mappings, every hostile string
// escaped, and the CSP matching the style block.
func TestReport(t *testing.T) {
	_, svc := fill(t)
	ctx := context.Background()
	if _, err := svc.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "agent-a"} {
		var b bytes.Buffer
		if err := svc.WriteReport(ctx, &b, id, nil); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		for _, raw := range []string{xssHost, xssPkg, xssTitle, "<b>found</b>", "<i>www-data</i>", "<script>x</script>"} {
			if strings.Contains(html, raw) {
				t.Errorf("report %q holds the raw string %s", id, raw)
			}
		}
		for _, want := range []string{
			"&lt;script&gt;alert(&#34;host&#34;)&lt;/script&gt;",
			"&lt;img src=x onerror=alert(&#34;pkg&#34;)&gt;",
			"Set PermitRootLogin no in /etc/ssh/sshd_config",
			"3.0.11-1~deb12u2 of DSA-5532-1 for Debian 12",
			"CVE-2023-5678",
			"−5: 1 critical vulnerability with a fix available",
			"−5: 1 failed high-severity configuration check", "−3: 1 failed medium-severity configuration check",
			"Protect individuals and infrastructure", "Practise cyber hygiene", "No private hack back",
			"GDPR, Art. 32 and Art. 33", "NIS2 Directive, Art. 21 and Art. 23", "CIS Controls v8",
			"GDPR Art. 33 personal-data breach", "Web shell on &lt;script&gt;x&lt;/script&gt;",
			`<polyline class="line" points="`,
		} {
			if !strings.Contains(html, strings.ReplaceAll(want, "'", "&#39;")) && !strings.Contains(html, want) {
				t.Errorf("report %q lacks %q", id, want)
			}
		}
		if csp := `content="` + html_.EscapeString(strings.TrimSuffix(hygiene.ReportCSP, "; frame-ancestors 'none'")) + `"`; !strings.Contains(strings.ReplaceAll(html, "&#43;", "+"), csp) {
			t.Errorf("report %q: no meta CSP %s", id, csp)
		}
		if id == "" && !strings.Contains(html, "db-01") {
			t.Errorf("fleet report lacks the second host")
		}
		if id == "agent-a" && strings.Contains(html, "db-01") {
			t.Errorf("host report shows another host")
		}
		if strings.Contains(html, " style=") || strings.Contains(html, "<script") {
			t.Errorf("report %q has a style attribute or a script", id)
		}
	}
	if err := svc.WriteReport(ctx, &bytes.Buffer{}, "nobody", nil); err == nil {
		t.Error("report of an unknown host")
	}
}
