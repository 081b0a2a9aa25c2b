package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
)

func (h *harness) send(method, path, who string, body any, want int, v any) []byte {
	h.t.Helper()
	st, b, _ := h.do(method, path, who, body)
	if st != want {
		h.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, who, st, b, want)
	}
	if v != nil {
		// Decode into a zero value: json reuses slice elements and would
		// keep fields an answer omits.
		reflect.ValueOf(v).Elem().SetZero()
		must(h.t, json.Unmarshal(b, v))
	}
	return b
}

func TestCasesAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		var c caseJSON
		h.send("POST", "/api/v1/cases", "analyst", map[string]any{"title": "Whoami on h1", "alert_ids": []int64{h.alertHigh}}, 201, &c)
		if c.Status != cases.StatusOpen || c.Severity != cases.SeverityHigh || c.CreatedBy != "token:analyst" ||
			!slices.Equal(c.AlertIDs, []int64{h.alertHigh}) || c.Version != 1 || len(c.Deadlines) != 0 {
			t.Errorf("created %+v", c)
		}
		base := fmt.Sprintf("/api/v1/cases/%d", c.ID)

		// Creation input is validated.
		for _, body := range []any{
			map[string]any{"title": "x", "alert_ids": []int64{}},
			map[string]any{"title": "x", "alert_ids": []int64{99999}},
			map[string]any{"title": "", "alert_ids": []int64{h.alertHigh}},
			map[string]any{"title": "a\u0000b", "alert_ids": []int64{h.alertHigh}},
			map[string]any{"title": "x", "alert_ids": []int64{h.alertHigh}, "severity": "urgent"},
			map[string]any{"title": "x", "alert_ids": []int64{h.alertHigh}, "owner": "me"},
			`{"title": "x", "alert_ids": "1"}`,
			"{\"title\": \"\xff\", \"alert_ids\": [1]}",
		} {
			if st, b, _ := h.do("POST", "/api/v1/cases", "analyst", body); st != 400 {
				t.Errorf("create %v: %d %s, want 400", body, st, b)
			}
		}
		if st, _, _ := h.do("POST", "/api/v1/cases", "analyst", `{"title": "`+strings.Repeat("x", 2<<20)+`"}`); st != 413 {
			t.Errorf("2 MiB body: %d, want 413", st)
		}

		// Status machine over PATCH.
		h.send("PATCH", base, "analyst", map[string]any{"status": "resolved", "reason": "x"}, 409, nil)
		h.send("PATCH", base, "analyst", map[string]any{"status": "in_progress", "assignee": "alice"}, 200, &c)
		if c.Status != cases.StatusInProgress || c.StatusBy != "token:analyst" || c.Assignee != "alice" || c.Version != 2 {
			t.Errorf("after PATCH %+v", c)
		}
		h.send("PATCH", base, "analyst", map[string]any{"status": "closed"}, 409, nil) // needs a reason
		h.send("PATCH", base, "analyst", map[string]any{"status": "done"}, 400, nil)
		h.send("PATCH", base, "analyst", map[string]any{"version": 1, "severity": "critical"}, 409, nil) // stale
		h.send("PATCH", base, "analyst", map[string]any{"version": 2, "severity": "critical"}, 200, &c)

		// Regulatory marks and clocks.
		aware := h.now.Add(-10 * time.Hour)
		h.send("PATCH", base, "analyst", map[string]any{"personal_data_breach": true, "breach_aware_at": aware}, 200, &c)
		if !c.Breach || c.BreachAwareAt == nil || !c.BreachAwareAt.Equal(aware) || len(c.Deadlines) != 1 {
			t.Fatalf("after marking a breach %+v", c)
		}
		d := c.Deadlines[0]
		if d.Notice != cases.NoticeGDPR || d.State != cases.DeadlineDue || !d.Due.Equal(aware.Add(72*time.Hour)) ||
			d.LeftSeconds < 61*3600 || d.LeftSeconds > 62*3600 {
			t.Errorf("GDPR deadline %+v", d)
		}
		h.send("PATCH", base, "analyst", map[string]any{"breach_aware_at": aware.Add(-time.Hour)}, 400, nil) // needs a reason
		h.send("PATCH", base, "analyst", map[string]any{"breach_aware_at": aware.Add(-time.Hour),
			"regulatory_reason": "first report was an hour earlier"}, 200, &c)
		sent := h.now.Add(-time.Minute)
		h.send("PATCH", base, "analyst", map[string]any{"sent": map[string]any{"gdpr_authority": sent}}, 200, &c)
		if c.Deadlines[0].State != cases.DeadlineMet || !c.Deadlines[0].Sent.Equal(sent) {
			t.Errorf("after sending %+v", c.Deadlines[0])
		}
		h.send("PATCH", base, "analyst", map[string]any{"sent": map[string]any{"nis2_early_warning": sent}}, 400, nil) // not NIS2
		h.send("PATCH", base, "analyst", map[string]any{"sent": map[string]any{"ccpa": sent}}, 400, nil)
		h.send("PATCH", base, "analyst", map[string]any{"sent": map[string]any{"gdpr_authority": nil},
			"regulatory_reason": "sent for the wrong case"}, 200, &c)
		if c.Deadlines[0].Sent != nil {
			t.Errorf("withdrawn mark still there: %+v", c.Deadlines[0])
		}
		h.send("PATCH", base, "analyst", map[string]any{"nis2_significant": true}, 200, &c)
		if len(c.Deadlines) != 4 || c.Deadlines[3].State != cases.DeadlineWaiting || c.Deadlines[3].Due != nil {
			t.Errorf("NIS2 deadlines %+v", c.Deadlines)
		}

		// Filters.
		var page casePage
		h.get("/api/v1/cases?regime=gdpr&status=in_progress&min_severity=critical&alert_id="+fmt.Sprint(h.alertHigh), "viewer", &page)
		if len(page.Items) != 1 || page.Items[0].ID != c.ID {
			t.Errorf("filtered list %+v", page)
		}
		h.get("/api/v1/cases?status=open", "viewer", &page)
		if len(page.Items) != 1 || page.Items[0].ID != h.caseID {
			t.Errorf("open cases %+v", page)
		}
		for _, q := range []string{"status=nope", "regime=ccpa", "min_severity=x", "alert_id=-1", "limit=0", "colour=red"} {
			if st, b, _ := h.do("GET", "/api/v1/cases?"+q, "viewer", nil); st != 400 {
				t.Errorf("list ?%s: %d %s", q, st, b)
			}
		}

		// More alerts, comments, evidence.
		h.send("POST", base+"/alerts", "analyst", map[string]any{"alert_ids": []int64{h.alertLow, h.alertHigh}}, 200, &c)
		if !slices.Equal(c.AlertIDs, []int64{h.alertHigh, h.alertLow}) {
			t.Errorf("alerts %v", c.AlertIDs)
		}
		h.send("POST", base+"/comments", "analyst", map[string]any{"text": "h1 isolated\nby the night shift"}, 201, nil)
		h.send("POST", base+"/comments", "analyst", map[string]any{"text": " "}, 400, nil)
		var cl caseCommentList
		h.get(base+"/comments", "viewer", &cl)
		if len(cl.Items) != 1 || cl.Items[0].Author != "token:analyst" {
			t.Errorf("comments %+v", cl)
		}
		h.send("POST", base+"/evidence", "analyst", map[string]any{"kind": "event", "ref": fmt.Sprint(h.eventID), "note": "the exec"}, 201, nil)
		h.send("POST", base+"/evidence", "analyst", map[string]any{"kind": "event", "ref": fmt.Sprint(h.eventID)}, 409, nil)
		h.send("POST", base+"/evidence", "analyst", map[string]any{"kind": "file", "ref": h.fileSum}, 400, nil)
		h.send("POST", base+"/evidence", "analyst", map[string]any{"kind": "alert", "ref": "123456"}, 400, nil)

		// Files: raw bytes in, the same bytes out, as an inert attachment.
		data := []byte("<html><script>alert(1)</script></html>")
		var ev evidenceJSON
		h.send("POST", base+"/files?name=..%2F..%2Fetc%2Fpasswd&note=from+h1", "analyst", rawBody{"application/octet-stream", data}, 201, &ev)
		if ev.Kind != cases.EvidenceFile || ev.Name != "../../etc/passwd" || ev.Size != int64(len(data)) || len(ev.Ref) != 64 {
			t.Errorf("uploaded %+v", ev)
		}
		st, b, hdr := h.do("GET", base+"/files/"+ev.Ref, "viewer", nil)
		if st != 200 || !bytes.Equal(b, data) || hdr.Get("Content-Type") != "application/octet-stream" ||
			!strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment") || hdr.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(hdr.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("download: %d %q %v", st, b, hdr)
		}
		for _, tc := range []struct {
			path string
			body rawBody
			want int
		}{
			{base + "/files?name=a", rawBody{"application/json", data}, 415},
			{base + "/files?name=a", rawBody{"", data}, 415},
			{base + "/files", rawBody{"application/octet-stream", []byte("x")}, 400},                   // no name
			{base + "/files?name=a%00b", rawBody{"application/octet-stream", []byte("x")}, 400},        // NUL in name
			{base + "/files?name=big", rawBody{"application/octet-stream", make([]byte, 65<<10)}, 413}, // over 64 KiB
			{base + "/files?name=copy", rawBody{"application/octet-stream", data}, 409},                // same content
			{"/api/v1/cases/9999/files?name=a", rawBody{"application/octet-stream", []byte("x")}, 404},
		} {
			if st, b, _ := h.do("POST", tc.path, "analyst", tc.body); st != tc.want {
				t.Errorf("POST %s (%s, %d bytes): %d %s, want %d", tc.path, tc.body.contentType, len(tc.body.data), st, b, tc.want)
			}
		}
		for _, p := range []string{base + "/files/" + strings.Repeat("0", 64), fmt.Sprintf("/api/v1/cases/%d/files/%s", h.caseID, ev.Ref)} {
			if st, _, _ := h.do("GET", p, "viewer", nil); st != 404 {
				t.Errorf("GET %s: %d, want 404 (not a file of that case)", p, st)
			}
		}
		if st, _, _ := h.do("GET", base+"/files/ABC", "viewer", nil); st != 400 {
			t.Errorf("malformed hash: %d", st)
		}
		var el evidenceList
		h.get(base+"/evidence", "viewer", &el)
		if len(el.Items) != 2 {
			t.Errorf("evidence %+v", el)
		}

		// Timeline: changes, and the alerts' occurrences and events.
		var tl timelineJSON
		h.get(base+"/timeline", "viewer", &tl)
		kinds := map[cases.EntryKind]int{}
		for _, e := range tl.Items {
			kinds[e.Kind]++
		}
		if kinds[cases.EntryCreated] != 1 || kinds[cases.EntryAlertSeen] < 2 || kinds[cases.EntryEventOccured] < 1 ||
			kinds[cases.EntryAwareness] != 1 || kinds[cases.EntryNoticeSent] != 2 || kinds[cases.EntryEvidence] != 2 {
			t.Errorf("timeline kinds %v", kinds)
		}

		// Report.
		st, b, hdr = h.do("GET", base+"/report?tz=Europe/Paris", "viewer", nil)
		if st != 200 || hdr.Get("Content-Type") != "text/html; charset=utf-8" || hdr.Get("Content-Security-Policy") != cases.ReportCSP ||
			!strings.Contains(string(b), "Incident report: case") || !strings.Contains(string(b), "Times are shown in Europe/Paris") {
			t.Errorf("report: %d %v %.200s", st, hdr, b)
		}
		for _, tz := range []string{"..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Flocaltime", "Mars/Olympus", "Europe%2FParis%00"} {
			if st, b, _ := h.do("GET", base+"/report?tz="+tz, "viewer", nil); st != 400 {
				t.Errorf("report tz=%s: %d %s", tz, st, b)
			}
		}
		if st, _, _ := h.do("GET", "/api/v1/cases/424242/report", "viewer", nil); st != 404 {
			t.Errorf("report of an unknown case: %d", st)
		}

		// Every change is in the hash-chained audit log, with who and from where.
		es, err := h.casesDB.AuditEntries(context.Background(), 0, 1000)
		must(t, err)
		var actions []string
		for _, e := range es {
			if e.Target == fmt.Sprintf("case:%d", c.ID) {
				actions = append(actions, e.Action)
				if strings.HasSuffix(e.Action, ".get") {
					continue // the viewer's downloads (files, report) are audited too
				}
				if e.Actor != "token:analyst" || e.Source != "127.0.0.1" {
					t.Errorf("audit entry %+v", e)
				}
			}
		}
		for _, want := range []string{"case.created", "case.status", "case.assignee", "case.severity", "case.flag",
			"case.awareness", "case.notice_sent", "case.alerts_added", "case.comment", "case.evidence",
			"api.cases.files.get", "api.cases.report.get"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit log lacks %s: %v", want, actions)
			}
		}
		if _, err := audit.Verify(context.Background(), h.casesDB, nil); err != nil {
			t.Errorf("audit chain: %v", err)
		}
	})
}

// TestCaseReportXSSThroughAPI puts hostile strings where an endpoint or a
// rule author controls them (rule title, host name, command line, user
// name, a file label) and fetches the report over HTTP: none survives as
// markup.
func TestCaseReportXSSThroughAPI(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	ctx := context.Background()
	payloads := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `'><svg onload=alert(1)>`,
		`</style><script>alert(1)</script>`, `<a href="javascript:alert(1)">x</a>`}
	var ids []int64
	for i, p := range payloads {
		id, _, err := h.proc.Record(ctx, alert.Finding{RuleID: fmt.Sprint("xss-", i), RuleTitle: p, Level: "high", Host: p,
			AgentID: h.agentID, Time: h.now, Tags: []string{"attack." + p},
			Fields: []event.Field{{Name: "CommandLine", Value: p}, {Name: "User", Value: p}, {Name: p, Value: p}}})
		must(t, err)
		ids = append(ids, id)
	}
	var c caseJSON
	h.send("POST", "/api/v1/cases", "analyst", map[string]any{"title": payloads[0], "alert_ids": ids}, 201, &c)
	base := fmt.Sprintf("/api/v1/cases/%d", c.ID)
	for i, p := range payloads {
		h.send("POST", base+"/files?name="+urlEscape(p), "analyst", rawBody{"application/octet-stream", []byte(p)}, 201, nil)
		h.send("POST", base+"/evidence", "analyst", map[string]any{"kind": "host", "ref": fmt.Sprint(p, i), "note": p}, 201, nil)
		h.send("POST", base+"/comments", "analyst", map[string]any{"text": p}, 201, nil)
	}
	st, b, _ := h.do("GET", base+"/report", "viewer", nil)
	if st != http.StatusOK {
		t.Fatalf("report: %d %s", st, b)
	}
	out := strings.ToLower(string(b))
	for _, bad := range []string{"<script", "<img", "<svg", "<a "} {
		if strings.Contains(out, bad) {
			t.Errorf("report contains markup %q", bad)
		}
	}
	for _, p := range payloads {
		if strings.Contains(string(b), p) {
			t.Errorf("payload %q appears unescaped", p)
		}
	}
	if !strings.Contains(string(b), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("escaped payload not found: the fields did not reach the report")
	}
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
