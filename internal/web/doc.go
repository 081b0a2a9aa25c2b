// Package web serves Vigil's HTTP surface: the REST API under /api/v1/, its
// OpenAPI 3.1 document, the health checks /healthz and /readyz, Prometheus
// metrics at /metrics, the SOC console (server-rendered HTML pages, small
// vanilla JS and CSS embedded from console/), and it mounts the agent
// transport handler at /agent/.
//
// Only cmd/vigil imports web; agents must not.
//
// # Routes and permissions
//
// Every route is one entry of a single table (routes.go): method, pattern,
// the authz.Permission it needs, the handler, and the notes the OpenAPI
// document is generated from. Registration, the OpenAPI document and the
// route × role tests all read that table, so they cannot disagree. A route
// without a permission panics at New.
//
// # Authentication
//
// API clients send "Authorization: Bearer <secret>". The secret is hashed
// with authz.Hash and looked up with authz.Store.TokenByHash; unknown,
// revoked and expired tokens all get the same 401, and a role lacking the
// route's permission gets 403 (a console session also works: see Sessions
// and sign-in). /healthz, /readyz and /api/v1/openapi.json are
// public (authz.PermPublic). /metrics needs authz.PermSystemRead, which every
// role holds: a Prometheus scraper uses a viewer token. Routes under /agent/
// are not authenticated here: the transport handler authenticates agents by
// their client certificate (mTLS) or an enrolment token.
//
// # The console
//
// Pages are one table too (pages.go), with the same rule: every entry names
// the permission it needs, and New panics on one that has none. The route ×
// role tests iterate over both tables (TestRouteRoleMatrix,
// TestAPISessionAuth, TestPageRoleMatrix).
//
// Adding a page:
//
//  1. Add an entry to pageTable: pattern (a ServeMux pattern, path
//     parameters as {name}), perm, title, nav: true to list it in the
//     navigation bar, tmpl (the template file) and handle, a
//     func(w, r) (any, error) that returns the page's data. Return
//     redirect("/path") to answer 303, written{} when the handler wrote the
//     response itself, an *Error to show its message with its status.
//  2. Write console/templates/NAME.html defining "content". The layout
//     (layout.html) wraps it with the navigation; the template gets a view:
//     .Title, .User, .Role, .CSRF (the session's token), .Path and .Data,
//     the handler's result. Functions: when (UTC time), ago, query (builds
//     "?k=v" from pairs, escaping) and pathEscape.
//  3. Scripts go in console/static/NAME.js, named in the entry's scripts;
//     console.js is always loaded first and provides Vigil.api(method, path,
//     body) (fetch with the session and the CSRF header), Vigil.el(tag,
//     attrs, children…) (builds elements; strings become text nodes),
//     Vigil.toast and Vigil.typing (is a key event in a text field).
//     Pages that change things through the API add forms.js: a
//     <form data-api="/api/v1/…"> is sent as JSON with the session's CSRF
//     header (its header comment lists the attributes), so the API's
//     permission, CSRF, origin and audit checks apply unchanged.
//     pagefuncs.go adds template functions: list, num, rfc3339, left,
//     divf, ms.
//  4. If the pattern has a new path parameter, teach pagePath in
//     console_test.go a seeded value: the matrix test fails until it does.
//
// What the CSP (ContentSecurityPolicy, sent with every response) forbids,
// the code must not need: no inline <script> or <style>, no style= or on…=
// attributes, no javascript: URLs, no eval. Untrusted text reaches HTML only
// through html/template (contextual escaping) and the DOM only through
// textContent or Vigil.el, never innerHTML.
//
// Console forms (method POST) are checked before their handler: a session,
// the page's permission, the session's CSRF token in the csrf form field
// (or X-CSRF-Token header), and Sec-Fetch-Site/Origin, when the browser
// sends them, naming this server. GET pages without a session redirect to
// /login?next=…; other requests without one get 401.
//
// # Sessions and sign-in
//
// POST /login checks the form's double-submit token (cookie
// __Host-vigil_login and a hidden field) and the origin, then
// authz.Authenticator.Login: per-address rate limit, per-account lockout,
// argon2id, TOTP. Success stores an authz.Session (only the SHA-256 of the
// cookie) and sets __Host-vigil_session (Secure, HttpOnly,
// SameSite=Strict, Path=/). An admin without TOTP gets a pending session
// that can only open /login/totp, which offers a secret derived from the
// session (HMAC under a per-process key, so the form never carries it) and
// replaces every session of the user with a fresh one once a code matches.
// Sessions end after Options.SessionIdle without use (30 min) and
// Options.SessionMax after sign-in (12 h); POST /logout deletes it.
//
// The API takes a session instead of a bearer token when no Authorization
// header is sent; its state changes then need X-CSRF-Token and the origin
// checks. A request with an Authorization header is judged by it alone.
//
// # Alert queue and detail
//
// /alerts lists alerts (filters state, min_level, host, rule_id, as in the
// API) and alerts.js keeps it current from GET /api/v1/alerts/stream
// (stream.go: Server-Sent Events, heartbeats, resumable with
// Last-Event-ID; an older page's stream, with before, watches that page's
// alerts for changes and adds no new ones); AlertsChanged wakes the
// streams when detection recorded an alert, or an analyst changed one (the
// streams also poll every second). Keys: j/k move, o or Enter open, x select, a acknowledge, s
// assign to me, f false positive (asks a reason), u suppress the rule for
// the host (asks a reason and a duration); with rows selected, a/s/f/u act
// on all of them. /alerts/{id} shows why the alert fired (the rule, its
// condition and searches, the matched fields highlighted in the triggering
// event, the raw event), the process ancestry walked through stored
// process_creation events (ProcessId/ParentProcessId, at most 8 levels, and
// the process's children) and the host's events 10 minutes either side.
//
// # Response actions in the console
//
// /actions (actions:read, actionpages.go) shows the approval queue (every
// action awaiting approval, whatever the filter) and the actions newest
// first, filtered by state, agent_id and group (a fleet-wide query), with
// requester, approver, times, the agent's refusal reason or error, a link
// to a collected file and the result's JSON (clipped at 8 KiB). The host
// page offers isolate/release, block (address or CIDR with a duration)
// and the live-query catalogue; the alert page offers kill for the
// triggering event's process, only when the event carries both ProcessId
// and ProcessStartTime (clock ticks since boot; the pid alone could hit a
// reused pid), and quarantine of its TargetFilename or Image. Every button
// is a forms.js form posting to /api/v1/actions, /{id}/approve or
// /{id}/cancel, so the route's permission, CSRF, origin and audit checks
// and respond's per-type permission and "never the requester" approval
// rule apply unchanged. A button is shown only to roles holding
// actions:request (actions:approve to approve) and the type's permission,
// and Approve is not shown on the viewer's own request; the server
// enforces all of it regardless (TestActionButtonsCSRF).
//
// # Console users
//
// The routes under /api/v1/users (users:admin, admins only; users.go)
// mirror `vigil user`: list, add (name and role), change a role, reset a
// password, reset TOTP. The server generates every password
// (authz.NewPassword, about 120 bits) and returns it once in the response
// body; it is hashed with the authenticator's argon2id parameters and
// appears in no log or audit entry (TestUserAdmin checks the audit log).
// A role change, password or TOTP reset ends the user's sessions. A role
// change that would leave no admin is refused with 409; changes made
// through this server are serialised, so two admins demoting each other
// at once cannot both succeed (the CLI does not take part in that lock).
// The settings page offers the same as forms.js forms and shows a new
// password with textContent.
//
// # Audit
//
// Every state-changing request of an identified caller, API or console,
// allowed or refused, is appended to the hash-chained audit log when it
// finishes (audit.go): actor, client address, a dotted action derived from
// the route ("api.alerts.state.post"), the target and the status, with what
// the handler added through noteAudit. Downloads of bulk or sensitive data
// are GETs but are audited the same way (the route's audit flag): an event
// export (the query, format, events written, and whether the stream was
// cut off), a case file, the case report and the hygiene report; a
// collected file's download is recorded by respond (action.file_read).
// Sign-in attempts are recorded as
// login.ok and login.fail; attempts refused by the rate limit are only
// counted (vigil_console_login_throttled_total). GET /api/v1/audit serves
// the log to admins.
//
// # Untrusted input
//
// Request bodies are limited to 1 MiB and 8 levels of nesting, must be
// valid UTF-8 JSON with Content-Type application/json, and are decoded with
// unknown fields rejected. The one exception is a case file upload: raw
// application/octet-stream bytes up to the cases service's limit, never
// parsed, stored by SHA-256. Query parameters are checked against each route's declared list
// (unknown or repeated parameters are rejected) and parsed strictly: limits
// are ranges, times RFC 3339, states and levels from their enums. Every API
// response is JSON (except /metrics, in the Prometheus text format, and an
// event export, which streams CSV or a JSON array page by page and is cut
// off, not ended, if storage fails midway); errors are {"code","message"}
// with codes from one table (errors.go). Every response, API and console,
// carries the CSP, X-Content-Type-Options: nosniff, Cache-Control:
// no-store, Referrer-Policy: same-origin, X-Frame-Options: DENY and HSTS.
//
// # Concurrency
//
// A Server is safe for concurrent use once New has returned; its only
// mutable state is its metrics, the session sweep time and the alert
// stream wake-up (AlertsChanged may be called from any goroutine), and a
// mutex serialising user changes. The
// interfaces in Options must be safe for concurrent use.
package web
