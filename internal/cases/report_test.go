package cases_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("time zone data: %v", err)
	}
	return loc
}

// dstCase builds a case whose clocks cross the end of summer time in
// Paris (2026-10-25 03:00 CEST → 02:00 CET, 01:00 UTC): awareness on the
// 24th at 11:00 CEST (09:00 UTC), so the GDPR deadline, 72 elapsed hours
// later, is 10:00 CET on the 27th, not 11:00.
func dstCase(t *testing.T) (*env, *cases.Case) {
	base := time.Date(2026, 10, 24, 9, 0, 0, 0, time.UTC)
	e := newEnvAt(t, base)
	ctx := context.Background()
	c, err := e.svc.Create(ctx, cases.NewCase{Title: "Cryptominer dropped on web-1 via piped script", AlertIDs: []int64{e.high, e.medium}}, "ann")
	must(t, err)
	e.now = base.Add(30 * time.Minute)
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Status: ptr(cases.StatusInProgress), Assignee: ptr("bob"),
		Breach: ptr(true), BreachAwareAt: ptr(base), NIS2: ptr(true), NIS2AwareAt: ptr(base)}, "ann")
	must(t, err)
	e.now = base.Add(time.Hour)
	_, err = e.svc.AddAlerts(ctx, c.ID, []int64{e.low}, "bob")
	must(t, err)
	_, err = e.svc.AddEvidence(ctx, c.ID, cases.EvidenceHost, "web-1", "isolated from the network at 12:05", "bob")
	must(t, err)
	_, err = e.svc.AddEvidence(ctx, c.ID, cases.EvidenceEvent, itoa(e.events[1]), "", "bob")
	must(t, err)
	_, err = e.svc.UploadFile(ctx, c.ID, "x (from /tmp)", strings.NewReader("\x7fELF fake miner"), "copied before deletion", "bob")
	must(t, err)
	_, err = e.svc.AddComment(ctx, c.ID, "Customer table was readable by www-data.\nTreating as a personal-data breach.", "bob")
	must(t, err)
	e.now = base.Add(20 * time.Hour) // 2026-10-25 05:00 UTC, after the change to CET
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeNIS2Warning: e.now}}, "carol")
	must(t, err)
	e.now = base.Add(70 * time.Hour)
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeNIS2Notice: e.now}}, "carol")
	must(t, err)
	e.now = base.Add(80 * time.Hour) // the GDPR notification is now 8 hours overdue
	c, err = e.svc.Get(ctx, c.ID)
	must(t, err)
	return e, c
}

func TestReportGolden(t *testing.T) {
	t.Parallel()
	e, c := dstCase(t)
	var buf bytes.Buffer
	must(t, e.svc.WriteReport(context.Background(), &buf, c.ID, paris(t)))
	got := buf.Bytes()
	path := filepath.Join("testdata", "report.golden.html")
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(got, want) {
		os.WriteFile(filepath.Join(t.TempDir(), "report.html"), got, 0o644)
		t.Errorf("report differs from %s (run go test ./internal/cases -run ReportGolden -update and review the diff)\n%s", path, firstDiff(got, want))
	}
}

func firstDiff(got, want []byte) string {
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			return "line " + itoa(int64(i+1)) + ":\n got: " + g + "\nwant: " + w
		}
	}
	return ""
}

// TestReportDST checks the displayed times around the change from CEST to
// CET, and that the report is self-contained.
func TestReportDST(t *testing.T) {
	t.Parallel()
	e, c := dstCase(t)
	var buf bytes.Buffer
	must(t, e.svc.WriteReport(context.Background(), &buf, c.ID, paris(t)))
	out := buf.String()
	for _, want := range []string{
		// awareness in summer time, the GDPR deadline 72 h later in winter time
		"2026-10-24 11:00:00 CEST (&#43;02:00) · 09:00 UTC",
		"2026-10-27 10:00:00 CET (&#43;01:00) · 09:00 UTC",
		// early warning due 24 h after awareness: 10:00 CET (the night lost an hour of wall clock)
		"2026-10-25 10:00:00 CET (&#43;01:00) · 09:00 UTC",
		// the final report: one month after the notification was sent (Oct 27 07:00 UTC)
		"2026-11-27 08:00:00 CET (&#43;01:00) · 07:00 UTC",
		`<span class="state state-overdue">overdue</span><br>8h 00m past the deadline`,
		`<span class="state state-met">met</span>`,
		"Times are shown in Europe/Paris.",
		"TA0002 Execution", "T1059.004", "TA0003 Persistence", "T1053.003",
		"SHA-256 108390a7f2bb6368b9b0fbfafbec8d170367dcef6c36394e241ecd3fc9ad3368", // of "\x7fELF fake miner"
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http://", "https://"} {
		// http:// appears only inside the escaped command line of the seed event, never as a resource.
		if banned == "http://" {
			if strings.Contains(out, `src="http://`) || strings.Contains(out, `href="http://`) {
				t.Errorf("report loads %s", banned)
			}
			continue
		}
		if strings.Contains(out, banned) {
			t.Errorf("report contains %q: it must be self-contained", banned)
		}
	}
	if !strings.Contains(out, `http-equiv="Content-Security-Policy"`) {
		t.Error("report has no CSP meta element")
	}
	// ("+" is written as &#43; by html/template.) In UTC, the same instants.
	buf.Reset()
	must(t, e.svc.WriteReport(context.Background(), &buf, c.ID, nil))
	if !strings.Contains(buf.String(), "2026-10-27 09:00:00 UTC") || strings.Contains(buf.String(), "CET") {
		t.Error("UTC report does not show the GDPR deadline at 09:00 UTC")
	}
}
