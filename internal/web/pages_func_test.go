package web

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
)

// TestRuleSwitchPage: the rules page's disable and enable forms are POSTs
// that need the rules:admin permission and the CSRF token, change the rule
// and are audited.
func TestRuleSwitchPage(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	admin, analyst := h.newSession("admin", false), h.newSession("analyst", false)
	path := "/rules/" + url.PathEscape(h.ruleID) + "/disable"
	if resp, _ := h.browser(browserReq{method: "POST", path: path, sess: &analyst, form: url.Values{"csrf": {analyst.csrf}}}); resp.StatusCode != 403 {
		t.Errorf("analyst disabling a rule: %d", resp.StatusCode)
	}
	if resp, _ := h.browser(browserReq{method: "POST", path: path, sess: &admin, form: url.Values{}}); resp.StatusCode != 403 {
		t.Errorf("disable without the CSRF token: %d", resp.StatusCode)
	}
	resp, _ := h.browser(browserReq{method: "POST", path: path, sess: &admin,
		form: url.Values{"csrf": {admin.csrf}, "back": {"/rules?q=whoami"}}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/rules?q=whoami" {
		t.Fatalf("disable: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := h.browser(browserReq{method: "GET", path: "/rules?state=disabled", sess: &admin})
	if !strings.Contains(body, "Whoami run") || !strings.Contains(body, ">Enable</button>") {
		t.Errorf("disabled rule not listed as disabled:\n%s", body)
	}
	// A back link off the rules page is not followed.
	resp, _ = h.browser(browserReq{method: "POST", path: "/rules/" + url.PathEscape(h.ruleID) + "/enable", sess: &admin,
		form: url.Values{"csrf": {admin.csrf}, "back": {"//evil.example/"}}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/rules" {
		t.Errorf("enable: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := h.browser(browserReq{method: "POST", path: "/rules/nope/enable", sess: &admin, form: url.Values{"csrf": {admin.csrf}}}); resp.StatusCode != 404 {
		t.Errorf("unknown rule: %d", resp.StatusCode)
	}
	var page auditPage
	h.get("/api/v1/audit?limit=1000", "admin", &page)
	var got []string
	for _, e := range page.Items {
		if strings.Contains(e.Action, "rules") {
			got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
		}
	}
	want := []string{"user:analyst console.rules.disable.post", "user:admin console.rules.disable.post",
		"user:admin console.rules.disable.post", "user:admin console.rules.enable.post", "user:admin console.rules.enable.post"}
	if len(got) != len(want) {
		t.Fatalf("audit entries for rules:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("audit entry %d = %q, want %q…", i, got[i], want[i])
		}
	}
}

// TestSearchPage: filters reach the store, results show newest first with
// their fields, and the export links carry the same search.
func TestSearchPage(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	sess := h.newSession("viewer", false)
	_, body := h.browser(browserReq{method: "GET", path: "/search", sess: &sess})
	if !strings.Contains(body, "/usr/bin/whoami") || !strings.Contains(body, "10.0.0.9") || !strings.Contains(body, "<option selected>24h</option>") {
		t.Errorf("default search (last 24 h) should show both events:\n%s", between(body, `<main`, `</main>`))
	}
	_, body = h.browser(browserReq{method: "GET", path: "/search?range=1h", sess: &sess})
	if !strings.Contains(body, "/usr/bin/whoami") || strings.Contains(body, "10.0.0.9") {
		t.Errorf("the last hour should show the recent event only:\n%s", between(body, `<main`, `</main>`))
	}
	_, body = h.browser(browserReq{method: "GET", path: "/search?range=&host=h2&field=DestinationIp%3D10.0.0.9&field=", sess: &sess})
	if !strings.Contains(body, "10.0.0.9") || strings.Contains(body, "/usr/bin/whoami") {
		t.Errorf("host and field search:\n%s", between(body, `<main`, `</main>`))
	}
	for _, want := range []string{`href="/api/v1/events/export?field=DestinationIp%3D10.0.0.9&amp;host=h2&amp;format=csv"`,
		`href="/api/v1/events/export?field=DestinationIp%3D10.0.0.9&amp;host=h2&amp;format=json"`} {
		if !strings.Contains(body, want) {
			t.Errorf("export link %s missing", want)
		}
	}
	// The export link works with the session.
	resp, csv := h.browser(browserReq{method: "GET", path: "/api/v1/events/export?field=DestinationIp%3D10.0.0.9&host=h2&format=csv", sess: &sess})
	if resp.StatusCode != 200 || strings.Count(csv, "\n") != 2 || !strings.Contains(csv, "10.0.0.9") {
		t.Errorf("export by session: %d %q", resp.StatusCode, csv)
	}
	_, body = h.browser(browserReq{method: "GET", path: "/search?from=yesterday", sess: &sess})
	if !strings.Contains(body, `class="error"`) || !strings.Contains(body, "from") {
		t.Errorf("a bad time should be reported on the form")
	}
}

// TestCasePages: the cases list shows the most urgent running clock, the
// case page every deadline, and a viewer gets no forms.
func TestCasePages(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	aware := h.now.Add(-70 * time.Hour)
	breach := true
	if _, err := h.cases.Update(t.Context(), h.caseID, cases.Change{Breach: &breach, BreachAwareAt: &aware}, "seed"); err != nil {
		t.Fatal(err)
	}
	viewer := h.newSession("viewer", false)
	_, body := h.browser(browserReq{method: "GET", path: "/cases", sess: &viewer})
	if !strings.Contains(body, "deadline-due") || !strings.Contains(body, "h") || !strings.Contains(body, "left") {
		t.Errorf("cases list lacks the running GDPR clock:\n%s", between(body, `<main`, `</main>`))
	}
	_, body = h.browser(browserReq{method: "GET", path: fmt.Sprintf("/cases/%d", h.caseID), sess: &viewer})
	if !strings.Contains(body, `data-notice="gdpr_authority"`) || !strings.Contains(body, "2h0m left") {
		t.Errorf("case page lacks the GDPR deadline (2 h left):\n%s", between(body, `id="deadlines"`, `</table>`))
	}
	if strings.Contains(body, "data-api=") {
		t.Error("a viewer's case page has forms")
	}
	analyst := h.newSession("analyst", false)
	_, body = h.browser(browserReq{method: "GET", path: fmt.Sprintf("/cases/%d", h.caseID), sess: &analyst})
	if !strings.Contains(body, `data-api="/api/v1/cases/`) || !strings.Contains(body, "Mark sent") {
		t.Error("an analyst's case page lacks the forms")
	}
	_, body = h.browser(browserReq{method: "GET", path: fmt.Sprintf("/cases/new?alert=%d&alert=%d&alert=99999", h.alertHigh, h.alertLow), sess: &analyst})
	if !strings.Contains(body, fmt.Sprintf(`value="%d,%d"`, h.alertHigh, h.alertLow)) || !strings.Contains(body, "Alert 99999 does not exist") {
		t.Errorf("new case form:\n%s", between(body, `<main`, `</main>`))
	}
}
