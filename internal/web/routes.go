package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// route is one entry of the route table: everything registration, the
// OpenAPI document and the tests need to know about an endpoint.
type route struct {
	method  string
	pattern string // ServeMux pattern without the method; {name} segments are path parameters
	perm    authz.Permission
	summary string
	handle  func(w http.ResponseWriter, r *http.Request) error
	// audit records a GET in the audit log as if it changed state: bulk
	// or sensitive downloads (event export, reports, case files), which an
	// insider taking data would use and a SOC must see.
	audit bool

	// Notes for the OpenAPI document.
	query  []param // the only query parameters accepted
	body   any     // request body: a zero value of its type; nil means none is accepted
	resp   any     // success body: a zero value of its type; nil means none (204)
	status int     // success status; 0 means 200
	text   string  // success media type when not JSON
	notes  string  // longer description

	// bodyMedia is the request media type when the body is not JSON (an
	// upload); the handler reads the body itself.
	bodyMedia string
}

// param is a query parameter a route accepts.
type param struct {
	name string
	typ  string // integer, string, date-time
	enum []string
	many bool // may repeat
	doc  string
}

var (
	pLimit  = param{name: "limit", typ: "integer", doc: "page size, 1 to 1000 (default 100)"}
	pBefore = param{name: "before", typ: "integer", doc: "continue below this id: next_before of the previous page"}
)

// table is the API. Keep it sorted by path; every entry needs a permission.
func (s *Server) table() []route {
	alertStates := []string{"new", "acknowledged", "resolved", "false_positive"}
	var actionStates []string
	for _, st := range respond.States {
		actionStates = append(actionStates, string(st))
	}
	return []route{
		{method: "GET", pattern: "/healthz", perm: authz.PermPublic, handle: s.healthz,
			summary: "Liveness: the process serves requests", resp: statusResp{}},
		{method: "GET", pattern: "/readyz", perm: authz.PermPublic, handle: s.readyz,
			summary: "Readiness: storage and dependencies are reachable (503 otherwise)", resp: statusResp{}},
		{method: "GET", pattern: "/metrics", perm: authz.PermSystemRead, handle: s.serveMetrics,
			summary: "Prometheus metrics (text exposition format); scrape with any role's token",
			resp:    "", text: "text/plain"},
		{method: "GET", pattern: "/api/v1/openapi.json", perm: authz.PermPublic, handle: s.serveOpenAPI,
			summary: "This OpenAPI 3.1 document", resp: map[string]any{}},

		{method: "GET", pattern: "/api/v1/actions", perm: authz.PermActionsRead, handle: s.listActions,
			summary: "List response actions, newest first", resp: actionList{},
			query: []param{
				{name: "state", typ: "string", enum: actionStates, many: true, doc: "only these states (repeat for several)"},
				{name: "agent_id", typ: "string", doc: "only this agent's"},
				{name: "group", typ: "string", doc: "only this request's (a fleet-wide query's per-host actions)"},
				pLimit, {name: "before", typ: "string", doc: "continue after this action id: next_before of the previous page"},
			}},
		{method: "POST", pattern: "/api/v1/actions", perm: authz.PermActionsRequest, handle: s.createAction,
			summary: "Request a response action on a host (or a query on all hosts); the type's own permission is checked too",
			body:    actionReq{}, resp: actionList{}, status: http.StatusCreated,
			notes: "Types and their permissions: kill, quarantine, restore, collect, query (analysts and admins); block, unblock, isolate, release (admins). " +
				"Arguments per type are in docs/actions.md. Types configured for approval wait in awaiting_approval until another principal approves. " +
				"A refusal for lack of permission is 403 and recorded in the audit log."},
		{method: "GET", pattern: "/api/v1/actions/{id}", perm: authz.PermActionsRead, handle: s.getAction,
			summary: "Get one response action with the agent's result", resp: actionJSON{}},
		{method: "POST", pattern: "/api/v1/actions/{id}/approve", perm: authz.PermActionsApprove, handle: s.approveAction,
			summary: "Approve an action awaiting a second approver (not your own); it is then signed and queued", resp: actionJSON{}},
		{method: "POST", pattern: "/api/v1/actions/{id}/cancel", perm: authz.PermActionsRequest, handle: s.cancelAction,
			summary: "Cancel an action not yet delivered (409 otherwise)", resp: actionJSON{}},
		{method: "GET", pattern: "/api/v1/actions/{id}/file", perm: authz.PermActionsCollect, handle: s.actionFile,
			summary: "Download the file a collect action brought back (as an attachment); the download is audited",
			resp:    "", text: "application/octet-stream"},

		{method: "GET", pattern: "/api/v1/alerts", perm: authz.PermAlertsRead, handle: s.listAlerts,
			summary: "List alerts, newest first", resp: alertPage{},
			query: []param{
				{name: "state", typ: "string", enum: alertStates, many: true, doc: "only these states (repeat for several)"},
				{name: "host", typ: "string", doc: "only this host"},
				{name: "rule_id", typ: "string", doc: "only this rule"},
				{name: "min_level", typ: "string", enum: levels, doc: "only this level or higher"},
				{name: "since", typ: "date-time", doc: "only alerts seen at or after this time (RFC 3339)"},
				pLimit, pBefore,
			}},
		{method: "GET", pattern: "/api/v1/alerts/stream", perm: authz.PermAlertsRead, handle: s.streamAlerts,
			summary: "Server-Sent Events: new and changed alerts matching the filter, live", resp: "", text: "text/event-stream",
			query: []param{
				{name: "state", typ: "string", enum: append([]string{"open"}, alertStates...), many: true, doc: "only these states (default open: new and acknowledged)"},
				{name: "host", typ: "string", doc: "only this host"},
				{name: "rule_id", typ: "string", doc: "only this rule"},
				{name: "min_level", typ: "string", enum: levels, doc: "only this level or higher"},
				{name: "after", typ: "integer", doc: "send alerts with a greater id (the Last-Event-ID header, sent on reconnection, wins)"},
				{name: "before", typ: "integer", doc: "watch the alerts below this id (an older page of the queue): their changes are sent, new alerts are not"},
			},
			notes: "Events: alert (new; id: is the alert id), update (an alert sent before changed), gone (no longer matches; data {\"id\":N}); a comment line every 15 s. The server ends a connection after 5 minutes; EventSource reconnects with Last-Event-ID."},
		{method: "GET", pattern: "/api/v1/alerts/{id}", perm: authz.PermAlertsRead, handle: s.getAlert,
			summary: "Get one alert", resp: alertJSON{}},
		{method: "POST", pattern: "/api/v1/alerts/{id}/state", perm: authz.PermAlertsTriage, handle: s.setAlertState,
			summary: "Change an alert's state (409 if the state machine forbids it or someone changed it first)",
			body:    stateReq{}, resp: alertJSON{},
			notes: "new → acknowledged | resolved | false_positive; acknowledged → resolved | false_positive; resolved, false_positive → acknowledged (reopen). false_positive needs a reason."},
		{method: "POST", pattern: "/api/v1/alerts/{id}/assign", perm: authz.PermAlertsTriage, handle: s.assignAlert,
			summary: "Assign an alert (an empty assignee unassigns)", body: assignReq{}, resp: alertJSON{}},
		{method: "GET", pattern: "/api/v1/alerts/{id}/comments", perm: authz.PermAlertsRead, handle: s.listComments,
			summary: "List an alert's comments, oldest first", resp: commentList{}},
		{method: "POST", pattern: "/api/v1/alerts/{id}/comments", perm: authz.PermAlertsTriage, handle: s.addComment,
			summary: "Comment on an alert", body: commentReq{}, resp: commentJSON{}, status: http.StatusCreated},

		{method: "GET", pattern: "/api/v1/audit", perm: authz.PermAuditRead, handle: s.listAudit,
			summary: "Read the hash-chained audit log, oldest first", resp: auditPage{},
			query: []param{
				{name: "after", typ: "integer", doc: "only entries after this sequence number: next_after of the previous page"},
				pLimit,
			},
			notes: "Every state change made through the API or the console, sign-ins and sign-outs: who (actor), from where (source), what (action), the target and the result. vigil audit verify checks the chain."},

		{method: "GET", pattern: "/api/v1/cases", perm: authz.PermCasesRead, handle: s.listCases,
			summary: "List cases (incidents), newest first", resp: casePage{},
			query: []param{
				{name: "status", typ: "string", enum: caseStatuses, many: true, doc: "only these statuses (repeat for several)"},
				{name: "assignee", typ: "string", doc: "only cases assigned to this user"},
				{name: "min_severity", typ: "string", enum: caseSeverities, doc: "only this severity or higher"},
				{name: "regime", typ: "string", enum: caseRegimes, doc: "only cases marked as a GDPR personal-data breach or a NIS2 significant incident"},
				{name: "alert_id", typ: "integer", doc: "only cases holding this alert"},
				pLimit, pBefore,
			}},
		{method: "POST", pattern: "/api/v1/cases", perm: authz.PermCasesWrite, handle: s.createCase,
			summary: "Open a case from one or more alerts", body: caseCreateReq{}, resp: caseJSON{}, status: http.StatusCreated},
		{method: "GET", pattern: "/api/v1/cases/{id}", perm: authz.PermCasesRead, handle: s.getCase,
			summary: "Get a case with its regulatory deadlines", resp: caseJSON{}},
		{method: "PATCH", pattern: "/api/v1/cases/{id}", perm: authz.PermCasesWrite, handle: s.updateCase,
			summary: "Change a case: title, severity, assignee, status, GDPR/NIS2 marks, awareness and sent times",
			body:    caseUpdateReq{}, resp: caseJSON{},
			notes: "Statuses: open → in_progress | closed; in_progress → resolved | closed; resolved → closed | in_progress; " +
				"closed → in_progress. Resolving, closing and reopening need a reason. Marking personal_data_breach or " +
				"nis2_significant records the awareness time (now, or the one given); changing a recorded awareness or sent time, " +
				"withdrawing a sent mark (null) or unmarking needs regulatory_reason. With version, the change fails (409) if the " +
				"case changed since that version. 409 also for a forbidden status change."},
		{method: "POST", pattern: "/api/v1/cases/{id}/alerts", perm: authz.PermCasesWrite, handle: s.addCaseAlerts,
			summary: "Add alerts to a case (ones it holds are ignored)", body: caseAlertsReq{}, resp: caseJSON{}},
		{method: "GET", pattern: "/api/v1/cases/{id}/comments", perm: authz.PermCasesRead, handle: s.listCaseComments,
			summary: "List a case's comments, oldest first", resp: caseCommentList{}},
		{method: "POST", pattern: "/api/v1/cases/{id}/comments", perm: authz.PermCasesWrite, handle: s.addCaseComment,
			summary: "Comment on a case", body: commentReq{}, resp: caseCommentJSON{}, status: http.StatusCreated},
		{method: "GET", pattern: "/api/v1/cases/{id}/evidence", perm: authz.PermCasesRead, handle: s.listEvidence,
			summary: "List a case's evidence, oldest first", resp: evidenceList{}},
		{method: "POST", pattern: "/api/v1/cases/{id}/evidence", perm: authz.PermCasesWrite, handle: s.addEvidence,
			summary: "Attach an alert, event or host to a case as evidence (409 if already attached)",
			body:    evidenceReq{}, resp: evidenceJSON{}, status: http.StatusCreated},
		{method: "POST", pattern: "/api/v1/cases/{id}/files", perm: authz.PermCasesWrite, handle: s.uploadFile,
			summary: "Upload a file as evidence; it is stored by its SHA-256 (the name is only a label)",
			body:    "", bodyMedia: "application/octet-stream", resp: evidenceJSON{}, status: http.StatusCreated,
			query: []param{
				{name: "name", typ: "string", doc: "the file's label (required; never used as a path)"},
				{name: "note", typ: "string", doc: "why it matters"},
			},
			notes: "The body is the file's bytes, at most the server's upload limit (32 MiB by default; 413 above it). " +
				"The same content twice in one case is 409."},
		{method: "GET", pattern: "/api/v1/cases/{id}/files/{sha256}", perm: authz.PermCasesRead, handle: s.downloadFile, audit: true,
			summary: "Download an uploaded file of the case (as an attachment); the download is audited", resp: "", text: "application/octet-stream"},
		{method: "GET", pattern: "/api/v1/cases/{id}/report", perm: authz.PermCasesRead, handle: s.caseReport, audit: true,
			summary: "The incident report: one self-contained, printable HTML document; the download is audited", resp: "", text: "text/html",
			query: []param{{name: "tz", typ: "string", doc: "IANA time zone to show times in (default UTC), e.g. Europe/Paris"}}},
		{method: "GET", pattern: "/api/v1/cases/{id}/timeline", perm: authz.PermCasesRead, handle: s.caseTimeline,
			summary: "A case's timeline: every change, its alerts' occurrences and their events, oldest first", resp: timelineJSON{}},

		{method: "GET", pattern: "/api/v1/enrollment-tokens", perm: authz.PermEnrollAdmin, handle: s.listEnrollTokens,
			summary: "List agent enrolment tokens (secrets are never shown again)", resp: enrollTokenList{}},
		{method: "POST", pattern: "/api/v1/enrollment-tokens", perm: authz.PermEnrollAdmin, handle: s.createEnrollToken,
			summary: "Create an agent enrolment token; the response holds its secret, shown only once",
			body:    enrollTokenReq{}, resp: enrollTokenCreated{}, status: http.StatusCreated},
		{method: "DELETE", pattern: "/api/v1/enrollment-tokens/{id}", perm: authz.PermEnrollAdmin, handle: s.revokeEnrollToken,
			summary: "Revoke an enrolment token"},

		{method: "GET", pattern: "/api/v1/events", perm: authz.PermEventsRead, handle: s.searchEvents,
			summary: "Search events, newest first", resp: eventPage{},
			query: []param{
				{name: "host", typ: "string", doc: "only this host"},
				{name: "agent_id", typ: "string", doc: "only this agent"},
				{name: "category", typ: "string", doc: "only this log source category (process_creation, …)"},
				{name: "from", typ: "date-time", doc: "only events at or after this time (RFC 3339)"},
				{name: "to", typ: "date-time", doc: "only events before this time (RFC 3339)"},
				{name: "field", typ: "string", many: true, doc: "Name=Value: only events whose field equals the value, case-insensitive (repeat, up to 16)"},
				{name: "q", typ: "string", doc: "full-text search over all values"},
				pLimit, pBefore,
			}},
		{method: "GET", pattern: "/api/v1/events/export", perm: authz.PermEventsRead, handle: s.exportEvents, audit: true,
			summary: "Export the events of a search, newest first, as a CSV or JSON attachment (streamed); every export is audited",
			resp:    "", text: "text/csv",
			query: []param{
				{name: "format", typ: "string", enum: []string{"csv", "json"}, doc: "csv (one row per event; the default) or json (an array of events as GET /api/v1/events/{id} returns them)"},
				{name: "host", typ: "string", doc: "only this host"},
				{name: "agent_id", typ: "string", doc: "only this agent"},
				{name: "category", typ: "string", doc: "only this log source category"},
				{name: "from", typ: "date-time", doc: "only events at or after this time (RFC 3339)"},
				{name: "to", typ: "date-time", doc: "only events before this time (RFC 3339)"},
				{name: "field", typ: "string", many: true, doc: "Name=Value: only events whose field equals the value, case-insensitive (repeat, up to 16)"},
				{name: "q", typ: "string", doc: "full-text search over all values"},
				{name: "limit", typ: "integer", doc: "at most this many events, 1 to 100000 (default 10000)"},
				{name: "column", typ: "string", many: true, doc: "csv only: add a column with this field's values (repeat, up to 32)"},
			},
			notes: "CSV columns: id, time, host, agent_id, product, services, categories, fields (the [name, value] pairs as JSON), then one per column parameter. " +
				"Cells a spreadsheet would read as a formula (starting with =, +, -, @, tab or carriage return) are prefixed with an apostrophe; invalid UTF-8 becomes U+FFFD. " +
				"If storage fails mid-stream the response is cut off, never ended cleanly. " +
				"Each export is written to the audit log (action api.events.export.get) with the query, the format, the number of events written and the status."},
		{method: "GET", pattern: "/api/v1/events/{id}", perm: authz.PermEventsRead, handle: s.getEvent,
			summary: "Get one event", resp: eventJSON{}},

		{method: "GET", pattern: "/api/v1/hosts", perm: authz.PermHostsRead, handle: s.listHosts,
			summary: "List enrolled hosts (agents)", resp: hostList{}},
		{method: "GET", pattern: "/api/v1/hosts/{id}", perm: authz.PermHostsRead, handle: s.getHost,
			summary: "Get one host by agent id", resp: hostJSON{}},
		{method: "GET", pattern: "/api/v1/hosts/{id}/inventory", perm: authz.PermHostsRead, handle: s.getHostInventory,
			summary: "Get a host's latest complete inventory: OS, packages, users, groups, listening ports, services, kernel modules",
			resp:    inventory.Host{},
			notes:   "Served from the last snapshot the agent completed (docs/inventory.md); snapshot_id is empty and the lists are empty until the first one."},
		{method: "GET", pattern: "/api/v1/hosts/{id}/sca", perm: authz.PermHygieneRead, handle: s.getHostSCA,
			summary: "Get a host's configuration assessment: per policy the latest summary, every check's latest result and the summary history",
			resp:    sca.Host{},
			query:   []param{{name: "history", typ: "integer", doc: "summaries of past scans per policy, newest first, 0 to 1000 (default 30)"}},
			notes:   "Each result says passed, failed or not_applicable with the reason, its remediation and compliance mappings (docs/sca.md). policies is empty until the host's agent reports a scan."},
		{method: "GET", pattern: "/api/v1/hosts/{id}/vulnerabilities", perm: authz.PermHygieneRead, handle: s.getHostVulns,
			summary: "Get a host's vulnerability findings, worst first, each with its range, fix, advisory, severity and why",
			resp:    vuln.HostFindings{},
			notes: "Computed from the host's latest complete inventory and the imported database (vigil vulndb import; docs/vulnerabilities.md); " +
				"evaluation says from which snapshot and database generation, and note why a host with an inventory has no findings (an OS that is not matched). " +
				"A host not evaluated yet has an empty evaluation and no findings."},
		{method: "GET", pattern: "/api/v1/hosts/{id}/hygiene", perm: authz.PermHygieneRead, handle: s.getHostHygiene,
			summary: "Get a host's hygiene score (0 to 100) with the deductions that explain it and its history",
			resp:    hygiene.HostView{}, query: []param{pHistory},
			notes: "Computed now from the host's configuration results, vulnerability findings, open alerts and agent health; the weighting is docs/hygiene.md. history holds the recorded points (one per change, at most one per hour), newest first."},
		{method: "POST", pattern: "/api/v1/hosts/{id}/revoke", perm: authz.PermHostsAdmin, handle: s.revokeHost,
			summary: "Revoke a host's agent certificate; it is refused within a minute", resp: hostJSON{}},

		{method: "GET", pattern: "/api/v1/hygiene", perm: authz.PermHygieneRead, handle: s.getFleetHygiene,
			summary: "Hygiene scores: the fleet's (mean of its monitored hosts) and every host's, worst first, with the fleet's history",
			resp:    hygiene.FleetView{}, query: []param{pHistory},
			notes: "Each host's score comes with its deductions (\"−12: 3 critical vulnerabilities with fixes available\"); the weighting is docs/hygiene.md."},

		{method: "GET", pattern: "/api/v1/hygiene/report", perm: authz.PermHygieneRead, handle: s.hygieneReport, audit: true,
			summary: "The hygiene report of the fleet or of one host: one self-contained, printable HTML document (an attachment); the download is audited",
			resp:    "", text: "text/html",
			query: []param{
				{name: "host", typ: "string", doc: "an agent id: report on this host only (default: the fleet)"},
				{name: "tz", typ: "string", doc: "IANA time zone to show times in (default UTC), e.g. Europe/Paris"},
			},
			notes: "Score and trend, failed checks with remediation, vulnerabilities by severity with the why of each, open alerts and cases, and the posture mapped to the Paris Call, GDPR Art. 32/33, NIS2 Art. 21/23 and CIS Controls v8. Served with its own CSP: nothing may load or run, and only its style block applies (by hash)."},

		{method: "GET", pattern: "/api/v1/notify/channels", perm: authz.PermNotifyAdmin, handle: s.listChannels,
			summary: "List notification channels (secrets and passwords are never shown; chat webhook URLs are redacted)",
			resp:    channelList{}},
		{method: "POST", pattern: "/api/v1/notify/channels", perm: authz.PermNotifyAdmin, handle: s.createChannel,
			summary: "Create a notification channel", body: channelReq{}, resp: channelJSON{}, status: http.StatusCreated,
			notes: "kind webhook needs url and a secret of at least 16 bytes (the HMAC-SHA256 key); slack, teams and mattermost need url; email needs smtp_addr, from and to. URLs must be https unless the host is on the server's outbound allow-list; blocked addresses (loopback, private, link-local, CGNAT, metadata) are refused."},
		{method: "GET", pattern: "/api/v1/notify/channels/{id}", perm: authz.PermNotifyAdmin, handle: s.getChannel,
			summary: "Get one notification channel", resp: channelJSON{}},
		{method: "PUT", pattern: "/api/v1/notify/channels/{id}", perm: authz.PermNotifyAdmin, handle: s.updateChannel,
			summary: "Replace a notification channel; an empty secret, password or chat URL keeps the stored one",
			body:    channelReq{}, resp: channelJSON{}},
		{method: "DELETE", pattern: "/api/v1/notify/channels/{id}", perm: authz.PermNotifyAdmin, handle: s.deleteChannel,
			summary: "Delete a notification channel (409 while a route uses it)"},
		{method: "POST", pattern: "/api/v1/notify/channels/{id}/test", perm: authz.PermNotifyAdmin, handle: s.testChannel,
			summary: "Send a test message to a channel now; the result says whether it was delivered", resp: testResult{}},
		{method: "GET", pattern: "/api/v1/notify/routes", perm: authz.PermNotifyAdmin, handle: s.listRoutes,
			summary: "List notification routes", resp: routeList{}},
		{method: "POST", pattern: "/api/v1/notify/routes", perm: authz.PermNotifyAdmin, handle: s.createRoute,
			summary: "Create a notification route", body: routeReq{}, resp: routeJSON{}, status: http.StatusCreated,
			notes: "An alert matches when its level is at least min_level, one of its tags matches one of tags, and its host matches one of hosts (patterns with * and ?, case-insensitive; empty lists match all). escalate_after_seconds and escalate_to go together: an alert still new that long after it was routed is sent to escalate_to."},
		{method: "GET", pattern: "/api/v1/notify/routes/{id}", perm: authz.PermNotifyAdmin, handle: s.getRoute,
			summary: "Get one notification route", resp: routeJSON{}},
		{method: "PUT", pattern: "/api/v1/notify/routes/{id}", perm: authz.PermNotifyAdmin, handle: s.updateRoute,
			summary: "Replace a notification route", body: routeReq{}, resp: routeJSON{}},
		{method: "DELETE", pattern: "/api/v1/notify/routes/{id}", perm: authz.PermNotifyAdmin, handle: s.deleteRoute,
			summary: "Delete a notification route and its pending escalations"},

		{method: "GET", pattern: "/api/v1/playbooks", perm: authz.PermActionsRead, handle: s.listPlaybooks,
			summary: "List response playbooks", resp: playbookList{}},
		{method: "POST", pattern: "/api/v1/playbooks", perm: authz.PermPlaybooksWrite, handle: s.createPlaybook,
			summary: "Create a playbook: alerts of at least min_level carrying one of tags run the action on their agent",
			body:    playbookReq{}, resp: playbookJSON{}, status: http.StatusCreated,
			notes: "The creator must hold the permission of the playbook's action type (403 and audited otherwise). The playbook acts as its creator: " +
				"when it triggers, the creator's current role must still allow the action, else the action is refused and audited. " +
				"dry_run records what would run in the audit log; max_per_hour (default 10) bounds its actions per rolling hour."},
		{method: "DELETE", pattern: "/api/v1/playbooks/{id}", perm: authz.PermPlaybooksWrite, handle: s.deletePlaybook,
			summary: "Delete a playbook (needs the permission of its action type)"},

		{method: "GET", pattern: "/api/v1/rules", perm: authz.PermRulesRead, handle: s.listRules,
			summary: "List rules with their health (matches, evaluation cost, last error)", resp: ruleList{}},
		{method: "POST", pattern: "/api/v1/rules/reload", perm: authz.PermRulesAdmin, handle: s.reloadRules,
			summary: "Reload the rule files now; returns the new rule list", resp: ruleList{}},
		{method: "POST", pattern: "/api/v1/rules/{id}/enable", perm: authz.PermRulesAdmin, handle: s.enableRule,
			summary: "Enable a rule", resp: ruleJSON{}},
		{method: "POST", pattern: "/api/v1/rules/{id}/disable", perm: authz.PermRulesAdmin, handle: s.disableRule,
			summary: "Disable a rule", resp: ruleJSON{}},

		{method: "GET", pattern: "/api/v1/sca", perm: authz.PermHygieneRead, handle: s.listFleetSCA,
			summary: "Configuration assessment across the fleet: every host's latest summary per policy (worst score first) and the checks failing on most hosts",
			resp:    sca.Fleet{}, query: []param{pLimit}},

		{method: "GET", pattern: "/api/v1/suppressions", perm: authz.PermSuppressRead, handle: s.listSuppressions,
			summary: "List active (unexpired) suppressions", resp: suppressionList{}},
		{method: "POST", pattern: "/api/v1/suppressions", perm: authz.PermSuppressWrite, handle: s.createSuppression,
			summary: "Suppress a rule on a host, or where a field has a value, until it expires",
			body:    suppressionReq{}, resp: suppressionJSON{}, status: http.StatusCreated},
		{method: "DELETE", pattern: "/api/v1/suppressions/{id}", perm: authz.PermSuppressWrite, handle: s.deleteSuppression,
			summary: "Delete a suppression"},

		{method: "GET", pattern: "/api/v1/tokens", perm: authz.PermTokensAdmin, handle: s.listTokens,
			summary: "List API tokens (secrets are never shown again)", resp: tokenList{}},
		{method: "POST", pattern: "/api/v1/tokens", perm: authz.PermTokensAdmin, handle: s.createToken,
			summary: "Create an API token; the response holds its secret, shown only once",
			body:    tokenReq{}, resp: tokenCreated{}, status: http.StatusCreated},
		{method: "DELETE", pattern: "/api/v1/tokens/{id}", perm: authz.PermTokensAdmin, handle: s.revokeToken,
			summary: "Revoke an API token"},

		{method: "GET", pattern: "/api/v1/users", perm: authz.PermUsersAdmin, handle: s.listUsers,
			summary: "List console users (never their password hashes or TOTP secrets)", resp: userList{}},
		{method: "POST", pattern: "/api/v1/users", perm: authz.PermUsersAdmin, handle: s.createUser,
			summary: "Add a console user; the server generates the password and returns it once", body: userCreateReq{}, resp: userPassword{}, status: http.StatusCreated,
			notes: "The password is in this response only: it is stored as argon2id and never logged or audited. 409 if the name exists."},
		{method: "POST", pattern: "/api/v1/users/{name}/password", perm: authz.PermUsersAdmin, handle: s.resetUserPassword,
			summary: "Reset a user's password to a generated one (returned once), clear a lockout and end the user's sessions", resp: userPassword{}},
		{method: "POST", pattern: "/api/v1/users/{name}/role", perm: authz.PermUsersAdmin, handle: s.setUserRole,
			summary: "Change a user's role and end the user's sessions; the last admin keeps the admin role (409)", body: userRoleReq{}, resp: userJSON{}},
		{method: "POST", pattern: "/api/v1/users/{name}/totp-reset", perm: authz.PermUsersAdmin, handle: s.resetUserTOTP,
			summary: "Remove a user's TOTP authenticator and end the user's sessions; it is enrolled again at the next sign-in", resp: userJSON{}},
		{method: "GET", pattern: "/api/v1/vulnerabilities", perm: authz.PermHygieneRead, handle: s.listVulns,
			summary: "The fleet's vulnerabilities: totals by severity and fixable, hosts worst first, the advisories on the most hosts",
			resp:    vuln.Fleet{},
			query:   []param{{name: "top", typ: "integer", doc: "how many advisories to list, 0 to 1000 (default 20)"}}},
	}
}

// register adds one route to the mux behind authentication, query checking
// and metrics. It panics on an entry that could not be served safely.
func (s *Server) register(rt route) {
	switch {
	case rt.perm == "":
		panic("web: route " + rt.method + " " + rt.pattern + " has no permission")
	case rt.perm != authz.PermPublic && !anyRoleAllows(rt.perm):
		// Agent and enrolment permissions authenticate elsewhere; no role holds them.
		panic("web: route " + rt.method + " " + rt.pattern + " needs " + string(rt.perm) + ", which no role holds")
	case rt.handle == nil || rt.method == "" || rt.summary == "":
		panic("web: route " + rt.method + " " + rt.pattern + " is incomplete")
	}
	label := rt.method + " " + rt.pattern
	s.mux.Handle(label, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.serveRoute(sw, r, rt)
		s.requests.WithLabelValues(label, strconv.Itoa(sw.status)).Inc()
		s.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	}))
}

func anyRoleAllows(p authz.Permission) bool {
	for _, r := range []authz.Role{authz.RoleAdmin, authz.RoleAnalyst, authz.RoleViewer} {
		if r.Allows(p) {
			return true
		}
	}
	return false
}

func (s *Server) serveRoute(w *statusWriter, r *http.Request, rt route) {
	label := rt.method + " " + rt.pattern
	if rt.perm != authz.PermPublic {
		p, e := s.authenticate(r, rt.perm)
		if p.kind != "" {
			r = r.WithContext(withPrincipal(r.Context(), p))
		}
		if e != nil {
			if e.Code == CodeUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			} else if stateChanging(r.Method) || rt.audit {
				// Identified but refused (role, CSRF): worth a record.
				s.auditRequest(r, label, e.Status(), e.Message)
			}
			writeError(w, e)
			return
		}
		if stateChanging(r.Method) || rt.audit {
			r = withAuditNote(r)
			defer func() { s.auditRequest(r, label, w.status, "") }()
		}
	}
	if e := checkQuery(r, rt.query); e != nil {
		writeError(w, e)
		return
	}
	if rt.body == nil {
		if e := noBody(w, r); e != nil {
			writeError(w, e)
			return
		}
	}
	if err := rt.handle(w, r); err != nil {
		e, unexpected := toAPI(err)
		if unexpected {
			s.log.Error("api request failed", "route", label, "err", err)
		}
		noteAudit(r, "", e.Message)
		writeError(w, e)
	}
}

// checkQuery rejects malformed, undeclared and repeated query parameters.
func checkQuery(r *http.Request, allowed []param) *Error {
	if r.URL.RawQuery == "" {
		return nil
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(CodeBadRequest, "malformed query string")
	}
	for name, vals := range v {
		p, ok := findParam(allowed, name)
		if !ok {
			return errorf(CodeBadRequest, "unknown query parameter %q", clip(name))
		}
		if len(vals) > 1 && !p.many {
			return errorf(CodeBadRequest, "query parameter %q given more than once", name)
		}
	}
	return nil
}

func findParam(ps []param, name string) (param, bool) {
	for _, p := range ps {
		if p.name == name {
			return p, true
		}
	}
	return param{}, false
}

// statusWriter remembers the status for the request metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
