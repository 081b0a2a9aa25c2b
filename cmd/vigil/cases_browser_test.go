package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

// TestCaseBrowser: an agent's event raises an alert; in the console the
// analyst opens a case from it, marks it as a personal-data breach, sees
// the GDPR Art. 33 72-hour clock running, comments, and exports the HTML
// report. Also opens the overview, host, search and rules pages. No
// JavaScript error, CSP on every response.
func TestCaseBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: runs in the integration step of scripts/test.sh")
	}
	s, admin, password := consoleServer(t, map[string]string{"whoami.yml": whoamiRule})
	b := newBrowser(t, 90*time.Second)
	base := "https://" + s.Addr().String()
	b.signInFirstTime(base, password)

	c := enrolAgent(t, s, admin, "db-07")
	ev := &event.Event{Product: "linux", Categories: []string{"process_creation"}, Time: time.Now().UTC()}
	ev.Add("Image", "/usr/bin/whoami")
	ev.Add("CommandLine", "whoami")
	ev.Add("User", "www-data")
	send(t, c, &wire.Batch{Version: wire.Version, BootEpoch: 1, Events: []wire.Event{wire.FromEvent(1, ev)}})
	var alerts struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(alerts.Items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no alert 10 s after the batch")
		}
		api(t, s, admin, "GET", "/api/v1/alerts", nil, &alerts)
		if len(alerts.Items) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	alertID := alerts.Items[0].ID

	// Open a case from the alert.
	b.run("new case", chromedp.Navigate(fmt.Sprintf("%s/cases/new?alert=%d", base, alertID)), visible("#create-case"))
	if got := b.text("#new-case-alerts tbody"); !strings.Contains(got, "Whoami run by a web server") {
		t.Errorf("new case page lists %q", got)
	}
	b.shot("case-new")
	b.run("create case", chromedp.Click(chromedp.CSS("#create-case")), visible("#case-facts"))
	url, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil || !strings.Contains(url, "/cases/") {
		t.Fatalf("after creating: %s %v", url, err)
	}
	caseID := url[strings.LastIndex(url, "/")+1:]
	if got := b.text("#case-alerts tbody"); !strings.Contains(got, "db-07") {
		t.Errorf("case alerts: %q", got)
	}

	// Mark it as a personal-data breach: the 72 h clock starts now.
	marked := time.Now().UTC()
	b.run("mark breach", chromedp.Click(chromedp.CSS("#mark-breach")), visible(`#deadlines tr[data-notice="gdpr_authority"]`))
	row := b.text(`#deadlines tr[data-notice="gdpr_authority"]`)
	b.shot("case-gdpr-clock")
	if !strings.Contains(row, "due: 71h") && !strings.Contains(row, "due: 72h") {
		t.Errorf("GDPR row %q: want due with about 72 h left", row)
	}
	due := marked.Add(72 * time.Hour).Format("2006-01-02 15:")
	if !strings.Contains(row, due) {
		t.Errorf("GDPR row %q: want due at %s…", row, due)
	}
	b.run("comment",
		chromedp.SendKeys(chromedp.CSS("#case-comment textarea"), "DPO informed <b>by phone</b>"),
		chromedp.Click(chromedp.CSS("#case-comment button")),
		visible(".comment pre"),
	)
	if got := b.text(".comment pre"); got != "DPO informed <b>by phone</b>" {
		t.Errorf("comment shows %q", got)
	}
	b.shot("case-commented")

	// Export the report: the link downloads the self-contained HTML
	// document GET /api/v1/cases/{id}/report serves.
	dl := t.TempDir()
	b.run("export report",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl})
			return err
		}),
		chromedp.Click(chromedp.CSS("#report")),
	)
	var report string
	for wait := time.Now().Add(10 * time.Second); report == "" && time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		files, _ := os.ReadDir(dl)
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".crdownload") {
				if b, err := os.ReadFile(filepath.Join(dl, f.Name())); err == nil && strings.Contains(string(b), "</html>") {
					report = string(b)
				}
			}
		}
	}
	if report == "" {
		t.Fatal("no report downloaded within 10 s")
	}
	if err := os.WriteFile(filepath.Join(b.dir, "case-report.html"), []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	for _, want := range []string{"Whoami run by a web server", "72", "DPO informed &lt;b&gt;by phone&lt;/b&gt;", "db-07"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if csp := cspOf(t, s, "/api/v1/cases/"+caseID+"/report"); csp == "" {
		t.Error("report served without a CSP")
	}

	// The other pages render without errors.
	for _, pg := range []struct{ path, sel string }{
		{"/", "#alert-chart"},
		{"/hosts", "#hosts"},
		{"/search?q=whoami&range=1h", "#results"},
		{"/rules", "#rules"},
		{"/cases", "#cases"},
		{"/settings", "#tokens"},
	} {
		b.run("page "+pg.path, chromedp.Navigate(base+pg.path), visible(pg.sel))
		b.shot("page" + strings.NewReplacer("/", "-", "?", "-", "&", "-", "=", "-").Replace(pg.path))
	}
	b.checkClean()
}
