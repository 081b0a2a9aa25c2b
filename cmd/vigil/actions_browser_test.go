package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestActionsBrowser: in the console the admin runs a live query from the
// host page's form, lands on the host's actions with the query pending,
// and cancels it from the list. No JavaScript error, CSP on every
// response.
func TestActionsBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: runs in the integration step of scripts/test.sh")
	}
	s, admin, password := consoleServer(t, nil)
	b := newBrowser(t, 60*time.Second)
	base := "https://" + s.Addr().String()
	b.signInFirstTime(base, password)
	enrolAgent(t, s, admin, "web-03")
	var hosts struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	api(t, s, admin, "GET", "/api/v1/hosts", nil, &hosts)
	if len(hosts.Items) != 1 {
		t.Fatalf("hosts: %+v", hosts)
	}
	id := hosts.Items[0].ID

	b.run("host page", chromedp.Navigate(base+"/hosts/"+id), visible("#act-query"), visible("#act-isolate"), visible("#act-block"))
	b.shot("host-actions")
	b.run("run query", chromedp.Click(chromedp.CSS("#act-query button")), visible("#actions tbody tr"))
	row := b.text("#actions tbody tr")
	if !strings.Contains(row, "query") || !strings.Contains(row, "name=processes") || !strings.Contains(row, "pending") || !strings.Contains(row, "web-03") {
		t.Errorf("actions row %q", row)
	}
	b.shot("actions-pending")
	// data-confirm asks through window.confirm: answer yes.
	b.run("cancel", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)(ctx, tg)
		return err
	}),
		chromedp.Click(chromedp.CSS("#actions button.cancel")))
	// The form reloads the page.
	b.run("cancelled", visible("#actions td.state-cancelled"))
	if row := b.text("#actions tbody tr"); !strings.Contains(row, "cancelled") || strings.Contains(row, "Cancel") {
		t.Errorf("after cancel: %q", row)
	}
	b.shot("actions-cancelled")
	b.checkClean()
}
