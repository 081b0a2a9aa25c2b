package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/wire"
)

// xssPayloads are placed in every attacker-controlled field the pages
// show. Each holds markup or a quote, so finding one verbatim in a page
// means it was not escaped.
var xssPayloads = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`'><svg onload=alert(3)>`,
	`</title><script>alert(4)</script>`,
	`</textarea><script>alert(5)</script>`,
	`<a href="javascript:alert(6)">x</a>`,
	`<style>*{display:none}</style>`,
	`<iframe srcdoc="<script>alert(7)</script>">`,
	`]]><script>alert(8)</script><![CDATA[`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(9)>`,
	`" autofocus onfocus="alert(10)`,
	`<div data-api="/api/v1/tokens">{{.}}</div>`,
}

// p returns payload i (cycling), so each field gets a different one.
func p(i int) string { return xssPayloads[i%len(xssPayloads)] }

// seedHostile stores hostile data through the store and the API: an agent
// and its events, health report and inventory; alerts; a rule file; a case
// with a comment, evidence and a file; an API token, an enrolment token
// and a notification channel. It returns the agent id, an alert id and the
// case id.
func seedHostile(t *testing.T, h *harness) (agentID string, alertID, caseID int64) {
	t.Helper()
	ctx := context.Background()
	db := h.be.(*sqlite.DB)
	now := h.now
	agentID = "agent-evil"
	// The last heartbeat's health, as the transport server stores it: every
	// sensor string (name, mechanism, status line), the throttle reason and
	// the version are the agent's and hostile.
	var sensors []wire.SensorHealth
	for i := range xssPayloads {
		sensors = append(sensors, wire.SensorHealth{Name: p(i), Mechanism: p(i + 1), State: wire.SensorDegraded,
			Detail: p(i+2) + " " + p(i+3)})
	}
	hb, err := json.Marshal(wire.Health{Time: now.Add(-10 * time.Second), Version: p(4), CPUPercent: 2.5, RSSBytes: 30 << 20,
		Throttled: true, Throttle: p(5), Spool: wire.SpoolHealth{Records: 3, Bytes: 4096, Dropped: 17}, Sensors: sensors})
	must(t, err)
	if _, ok, err := wire.DecodeHealth(hb); !ok || err != nil {
		t.Fatalf("hostile health refused by wire: %v", err)
	}
	must(t, db.PutAgent(ctx, transport.Agent{ID: agentID, Hostname: p(0), OS: p(1), Arch: p(2), Version: p(3),
		CertSerial: p(4), EnrolledAt: now, LastSeen: now.Add(-10 * time.Second), Health: hb, HealthAt: now.Add(-10 * time.Second)}))
	var evs []eventstore.Stored
	for i := range xssPayloads {
		e := &event.Event{Time: now.Add(-time.Duration(i+1) * time.Minute), Product: p(i + 1), Categories: []string{"process_creation", p(i + 2)}}
		e.Add("CommandLine", p(i))
		e.Add(p(i+3), p(i+4))
		for k := range 8 {
			e.Add("Extra"+strconv.Itoa(k), p(i+k))
		}
		evs = append(evs, eventstore.Stored{AgentID: agentID, BootEpoch: 1, Seq: uint64(i + 1), Host: p(i), Event: e})
	}
	health := &event.Event{Time: now.Add(-time.Minute), Product: "linux", Categories: []string{"agent_health"}}
	health.Add("SpoolDepth", p(0))
	health.Add("CPUSeconds", p(1))
	health.Add("Sensor."+p(2), p(3))
	gap := &event.Event{Time: now.Add(-time.Minute), Product: "linux", Categories: []string{"agent_health"}}
	gap.Add("EventType", "spool_gap")
	gap.Add("DroppedEvents", "17")
	evs = append(evs, eventstore.Stored{AgentID: agentID, BootEpoch: 1, Seq: 100, Host: p(5), Event: health},
		eventstore.Stored{AgentID: agentID, BootEpoch: 1, Seq: 101, Host: p(5), Event: gap})
	_, err = db.Insert(ctx, evs)
	must(t, err)

	item := func(v any) inventory.Item {
		b, err := json.Marshal(v)
		must(t, err)
		return inventory.Item{Data: b}
	}
	kinds := []struct {
		kind string
		item inventory.Item
	}{
		{inventory.KindOS, item(inventory.OS{Hostname: p(0), PrettyName: p(1), ID: "debian", KernelRelease: p(2)})},
		{inventory.KindPackage, item(inventory.Package{Name: p(3), Version: p(4), Arch: "amd64", Manager: "dpkg", Status: p(5)})},
		{inventory.KindUser, item(inventory.User{Name: p(6), Gecos: p(7), Home: p(8), Shell: p(9)})},
		{inventory.KindPort, item(inventory.Port{Protocol: "tcp", LocalIP: "0.0.0.0", LocalPort: 22, User: p(10), Image: p(11), CommandLine: p(0)})},
		{inventory.KindService, item(inventory.Service{Name: p(1), State: p(2), ExecStart: p(3)})},
		{inventory.KindModule, item(inventory.Module{Name: p(4), UsedBy: []string{p(5)}, State: p(6), Taint: p(7)})},
		{inventory.KindGroup, item(inventory.Group{Name: p(8), Members: []string{p(9)}})},
	}
	for i, k := range kinds {
		k.item.Name = fmt.Sprintf("item-%d", i)
		if k.kind == inventory.KindOS {
			k.item.Name = "os"
		}
		_, err := db.AddInventoryChunk(ctx, agentID, inventory.Chunk{SnapshotID: "snap-evil", Index: i, Count: len(kinds),
			Kind: k.kind, Collected: now.Add(-time.Minute), Items: []inventory.Item{k.item}}, now)
		must(t, err)
	}

	var as []*alert.Alert
	for i := range xssPayloads {
		as = append(as, &alert.Alert{RuleID: p(i), RuleTitle: p(i + 1), Level: p(i + 2), Host: p(i),
			Tags: []string{p(i + 3), "attack.execution", "attack.t1059.001"}, AgentID: agentID, Count: 1,
			FirstSeen: now.Add(-time.Hour), LastSeen: now.Add(-time.Hour), Assignee: p(i + 4),
			Fields: []event.Field{{Name: p(i), Value: p(i + 1)}}, EventIDs: []int64{1}})
	}
	must(t, db.CreateAlerts(ctx, as))
	alertID = as[0].ID

	st, b, _ := h.do("POST", "/api/v1/cases", "admin", map[string]any{"title": p(5), "assignee": p(6), "alert_ids": []int64{alertID, as[1].ID}})
	if st != 201 {
		t.Fatalf("create case: %d %s", st, b)
	}
	var c caseJSON
	must(t, json.Unmarshal(b, &c))
	caseID = c.ID
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"POST", fmt.Sprintf("/api/v1/cases/%d/comments", caseID), map[string]any{"text": p(7) + "\n" + p(8)}},
		{"POST", fmt.Sprintf("/api/v1/cases/%d/evidence", caseID), map[string]any{"kind": "host", "ref": p(9), "note": p(10)}},
		{"POST", fmt.Sprintf("/api/v1/cases/%d/files?name=%s&note=%s", caseID, url.QueryEscape(p(11)), url.QueryEscape(p(0))),
			rawBody{contentType: "application/octet-stream", data: []byte("evil file")}},
		{"PATCH", fmt.Sprintf("/api/v1/cases/%d", caseID), map[string]any{"personal_data_breach": true, "nis2_significant": true}},
		{"POST", "/api/v1/tokens", map[string]any{"name": p(1), "role": "viewer"}},
		{"POST", "/api/v1/enrollment-tokens", map[string]any{"note": p(2)}},
		{"POST", "/api/v1/notify/channels", map[string]any{"name": p(3), "kind": "webhook", "url": h.hookURL, "secret": "0123456789abcdef"}},
	} {
		if st, b, _ := h.do(req.method, req.path, "admin", req.body); st/100 != 2 {
			t.Fatalf("%s %s: %d %s", req.method, req.path, st, b)
		}
	}
	return agentID, alertID, caseID
}

// hostileRules writes the harness rule and a rule whose title, id,
// description and tags are payloads, and loads them.
func hostileRules(t *testing.T, be ruleset.Store) *ruleset.Manager {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "whoami.yml"), []byte(testRule), 0o600))
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	evil := "title: " + q(p(0)+p(1)) + "\nid: " + q(p(2)) + "\ndescription: " + q(p(3)) +
		"\ntags:\n  - " + q(p(4)) + "\n  - attack.execution\nlogsource:\n  category: process_creation\n" +
		"detection:\n  sel:\n    CommandLine|contains: " + q(p(5)) + "\n  condition: sel\nlevel: high\n"
	must(t, os.WriteFile(filepath.Join(dir, "evil.yml"), []byte(evil), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "broken.yml"), []byte("title: "+q(p(6))+"\ndetection: [\n"), 0o600))
	m := ruleset.New(ruleset.Options{Paths: []string{dir}, Store: be})
	must(t, m.Load(context.Background()))
	return m
}

// TestPagesEscapeHostileData renders every page of the overview, hosts,
// search, rules, cases and settings with payloads in every
// attacker-controlled field, as an admin (who sees every form): no payload
// appears unescaped, and the pages carry no inline script or style.
func TestPagesEscapeHostileData(t *testing.T) {
	be := openSQLite(t)
	rules := hostileRules(t, be)
	h := newHarness(t, be, func(o *Options) { o.Rules = rules })
	agentID, alertID, caseID := seedHostile(t, h)
	sess := h.newSession("admin", false)
	pages := []string{
		"/", "/?range=1h", "/?range=7d",
		"/hosts", "/hosts?q=" + url.QueryEscape(p(0)), "/hosts/" + agentID,
		"/search", "/search?agent_id=" + agentID + "&range=7d", "/search?q=" + url.QueryEscape(p(0)),
		"/search?field=" + url.QueryEscape("CommandLine="+p(1)), "/search?from=nonsense",
		"/rules", "/rules?q=" + url.QueryEscape(p(0)), "/rules?state=errors",
		"/cases", "/cases?regime=gdpr", fmt.Sprintf("/cases/new?alert=%d&alert=%d", alertID, alertID+1),
		fmt.Sprintf("/cases/%d", caseID), "/settings", "/hygiene",
	}
	for _, path := range pages {
		resp, body := h.browser(browserReq{method: "GET", path: path, sess: &sess})
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%.500s", path, resp.StatusCode, body)
			continue
		}
		checkSecurityHeaders(t, path, resp.Header)
		checkTags(t, path, body)
		for _, pl := range xssPayloads {
			if strings.Contains(body, pl) {
				t.Errorf("GET %s: payload %q appears unescaped", path, pl)
			}
		}
	}
	// The heartbeat health is shown, hostile strings as text: the host
	// page lists every sensor, the hosts list and the overview say the
	// host is online with degraded health.
	_, body := h.browser(browserReq{method: "GET", path: "/hosts/" + agentID, sess: &sess})
	hp := between(body, `<dl class="kv" id="health">`, `</dl>`)
	for _, want := range []string{"Sensor &lt;script&gt;alert(1)&lt;/script&gt;", "(&#39;&gt;&lt;svg onload=alert(3)&gt;)",
		": &lt;/title&gt;&lt;script&gt;alert(4)&lt;/script&gt; &lt;/textarea&gt;", `<span class="sensor-degraded">degraded</span>`,
		"&lt;iframe srcdoc=&#34;&lt;script&gt;alert(7)&lt;/script&gt;&#34;&gt;", "2.5 % CPU", "17 dropped"} {
		if !strings.Contains(hp, want) {
			t.Errorf("host page health lacks %q:\n%s", want, hp)
		}
	}
	if n := strings.Count(hp, "<dt>Sensor "); n != len(xssPayloads) {
		t.Errorf("host page shows %d sensors, want %d", n, len(xssPayloads))
	}
	_, body = h.browser(browserReq{method: "GET", path: "/hosts", sess: &sess})
	if !strings.Contains(body, `<td class="status-online">online</td><td class="health-degraded">degraded (throttled)</td>`) {
		t.Errorf("hosts list: the host is not online with degraded health:\n%s", between(body, `<table id="hosts">`, `</table>`))
	}
	_, body = h.browser(browserReq{method: "GET", path: "/", sess: &sess})
	if !strings.Contains(body, "<strong>1</strong> online with degraded health") || !strings.Contains(body, `id="fleet-troubled"`) {
		t.Errorf("overview fleet:\n%s", between(body, "<h2>Fleet</h2>", "</section>"))
	}
	// The payloads did render, as text.
	for path, want := range map[string]string{
		"/hosts/" + agentID:              "&lt;script&gt;alert(1)&lt;/script&gt;",
		"/hygiene":                       "&lt;script&gt;alert(1)&lt;/script&gt;",
		"/search?range=7d":               "&lt;script&gt;alert(1)&lt;/script&gt;",
		"/rules":                         "&lt;script&gt;alert(1)&lt;/script&gt;",
		"/settings":                      "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;",
		"/":                              "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;",
		fmt.Sprintf("/cases/%d", caseID): "&lt;a href=&#34;javascript:alert(6)&#34;&gt;x&lt;/a&gt;",
	} {
		_, body := h.browser(browserReq{method: "GET", path: path, sess: &sess})
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: %q not shown as text", path, want)
		}
	}
}

// checkTags reads the markup of a page html/template wrote (text and
// attribute values hold no raw < or >, so the tags are exactly the
// <…> spans) and fails on anything a payload could have smuggled in: a
// script other than one of ours, a style element or attribute, an event
// handler attribute, a javascript: URL, or an element no page template
// uses.
func checkTags(t *testing.T, what, body string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, n := range strings.Fields(`html head meta title link script body header a nav div span form input button main
		section h1 h2 p table thead tbody tr th td dl dt dd details summary code pre label select option textarea
		strong svg line text g rect datalist ul li`) {
		allowed[n] = true
	}
	for rest := body; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			t.Errorf("%s: unclosed tag at %.40q", what, rest[i:])
			return
		}
		tag := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		if strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "/") {
			continue
		}
		name, attrs, _ := strings.Cut(tag, " ")
		name = strings.ToLower(name)
		if !allowed[name] {
			t.Errorf("%s: element <%s>", what, tag)
		}
		if name == "script" && !strings.HasPrefix(attrs, `src="/static/`) {
			t.Errorf("%s: script <%s>", what, tag)
		}
		for _, a := range attrNames(attrs) {
			if strings.HasPrefix(a.name, "on") || a.name == "style" || a.name == "srcdoc" ||
				strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.value)), "javascript:") {
				t.Errorf("%s: attribute %s=%q in <%s>", what, a.name, a.value, tag)
			}
		}
	}
}

type attr struct{ name, value string }

// attrNames splits html/template's attributes (name, name="value").
func attrNames(s string) []attr {
	var out []attr
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k := strings.IndexAny(s, "= ")
		if k < 0 {
			out = append(out, attr{name: strings.ToLower(s)})
			break
		}
		a := attr{name: strings.ToLower(s[:k])}
		if s[k] == ' ' {
			out = append(out, a)
			s = s[k+1:]
			continue
		}
		s = s[k+1:]
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				a.value, s = s[1:], ""
			} else {
				a.value, s = s[1:end+1], s[end+2:]
			}
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			a.value, s = s[:end], s[end:]
		}
		out = append(out, a)
	}
	return out
}
