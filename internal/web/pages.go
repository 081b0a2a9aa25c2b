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
		{pattern: "/{$}", perm: authz.PermAlertsRead, nav: true, title: "Overview", tmpl: "placeholder.html", handle: s.placeholder},
		{pattern: "/alerts", perm: authz.PermAlertsRead, nav: true, title: "Alerts", tmpl: "alerts.html",
			scripts: []string{"alerts.js"}, handle: s.alertQueue},
		{pattern: "/alerts/{id}", perm: authz.PermAlertsRead, title: "Alert", tmpl: "alert.html",
			scripts: []string{"alerts.js"}, handle: s.alertDetail},
		{pattern: "/search", perm: authz.PermEventsRead, nav: true, title: "Search", tmpl: "placeholder.html", handle: s.placeholder},
		{pattern: "/hosts", perm: authz.PermHostsRead, nav: true, title: "Hosts", tmpl: "placeholder.html", handle: s.placeholder},
		{pattern: "/rules", perm: authz.PermRulesRead, nav: true, title: "Rules", tmpl: "placeholder.html", handle: s.placeholder},
		{pattern: "/cases", perm: authz.PermCasesRead, nav: true, title: "Cases", tmpl: "placeholder.html", handle: s.placeholder},
		{pattern: "/settings", perm: authz.PermUsersAdmin, nav: true, title: "Settings", tmpl: "placeholder.html", handle: s.placeholder},
	}
}
