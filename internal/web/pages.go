package web

import (
	"github.com/vigil-edr/vigil/internal/authz"
)

// pageTable is the console. Pages with nav appear in the navigation bar in
// this order, for the roles that hold their permission. Every entry needs a
// permission; doc.go says how to add a page.
func (s *Server) pageTable() []page {
	return []page{
		// Sign-in: public forms (their own checks: login.go).
		{pattern: "/login", perm: authz.PermPublic, title: "Sign in", tmpl: "login.html", handle: s.loginPage},
		{method: "POST", pattern: "/login", perm: authz.PermPublic, title: "Sign in", tmpl: "login.html", handle: s.loginSubmit},
		{pattern: "/login/totp", perm: authz.PermSession, pending: true, title: "Set up two-factor sign-in",
			tmpl: "totp.html", handle: s.totpPage},
		{method: "POST", pattern: "/login/totp", perm: authz.PermSession, pending: true, title: "Set up two-factor sign-in",
			tmpl: "totp.html", handle: s.totpSubmit},
		{method: "POST", pattern: "/logout", perm: authz.PermSession, title: "Sign out", tmpl: "error.html", handle: s.logout},
		{pattern: "/static/{file}", perm: authz.PermPublic, title: "Static file", raw: s.serveStatic},

		// The pages, in navigation order.
		{pattern: "/{$}", perm: authz.PermAlertsRead, nav: true, title: "Overview", tmpl: "overview.html", handle: s.overviewPage},
		{pattern: "/alerts", perm: authz.PermAlertsRead, nav: true, title: "Alerts", tmpl: "alerts.html",
			scripts: []string{"alerts.js"}, handle: s.alertQueue},
		{pattern: "/alerts/{id}", perm: authz.PermAlertsRead, title: "Alert", tmpl: "alert.html",
			scripts: []string{"alerts.js", "forms.js"}, handle: s.alertDetail},
		{pattern: "/search", perm: authz.PermEventsRead, nav: true, title: "Search", tmpl: "search.html", handle: s.searchPage},
		{pattern: "/hosts", perm: authz.PermHostsRead, nav: true, title: "Hosts", tmpl: "hosts.html", handle: s.hostsPage},
		{pattern: "/hosts/{id}", perm: authz.PermHostsRead, title: "Host", tmpl: "host.html", scripts: []string{"forms.js"}, handle: s.hostPage},
		{pattern: "/hygiene", perm: authz.PermHygieneRead, nav: true, title: "Hygiene", tmpl: "hygiene.html", handle: s.hygienePage},
		{pattern: "/actions", perm: authz.PermActionsRead, nav: true, title: "Actions", tmpl: "actions.html", scripts: []string{"forms.js"}, handle: s.actionsPage},
		{pattern: "/rules", perm: authz.PermRulesRead, nav: true, title: "Rules", tmpl: "rules.html", handle: s.rulesPage},
		{method: "POST", pattern: "/rules/{id}/enable", perm: authz.PermRulesAdmin, title: "Rules", tmpl: "rules.html", handle: s.ruleEnable},
		{method: "POST", pattern: "/rules/{id}/disable", perm: authz.PermRulesAdmin, title: "Rules", tmpl: "rules.html", handle: s.ruleDisable},
		{pattern: "/cases", perm: authz.PermCasesRead, nav: true, title: "Cases", tmpl: "cases.html", handle: s.casesPage},
		{pattern: "/cases/new", perm: authz.PermCasesRead, title: "New case", tmpl: "case_new.html", scripts: []string{"forms.js"}, handle: s.newCasePage},
		{pattern: "/cases/{id}", perm: authz.PermCasesRead, title: "Case", tmpl: "case.html", scripts: []string{"forms.js"}, handle: s.casePage},
		{pattern: "/settings", perm: authz.PermUsersAdmin, nav: true, title: "Settings", tmpl: "settings.html", scripts: []string{"forms.js"}, handle: s.settingsPage},
	}
}
