package cases

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// xssVectors are markup that would run script, load a resource or break
// out of a context if it reached the document unescaped.
var xssVectors = []string{
	`<script>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`<svg onload=alert(1)>`,
	`<svg><script>alert(1)</script></svg>`,
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<a href="javascript:alert(1)">x</a>`,
	`<body onload=alert(1)>`,
	`<details open ontoggle=alert(1)>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	`<link rel=stylesheet href=//evil.example/x.css>`,
	`<meta http-equiv="refresh" content="0;url=//evil.example">`,
	`<base href="//evil.example/">`,
	`<form action=//evil.example><button>x</button></form>`,
	`<object data="data:text/html,<script>alert(1)</script>">`,
	`<embed src=javascript:alert(1)>`,
	`<input autofocus onfocus=alert(1)>`,
	`<video><source onerror=alert(1)>`,
	`<style>@import '//evil.example/x.css';</style>`,
	`<div style="background:url(javascript:alert(1))">`,
	`<!--<script>alert(1)//-->`,
	`<![CDATA[<script>alert(1)</script>]]>`,
	`<scr<script>ipt>alert(1)</scr</script>ipt>`,
	`<SCRIPT SRC=//evil.example/x.js></SCRIPT>`,
	`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
	`<template><script>alert(1)</script></template>`,
}

// xssContexts wrap a vector to break out of the places a value may land:
// text, quoted and unquoted attributes, style and comment blocks.
var xssContexts = []string{
	"%s",
	`"%s`,
	`'%s`,
	`"><%s`,
	`'>%s`,
	`</td></tr></table>%s`,
	`</style>%s`,
	`--></pre>%s`,
}

func xssPayloads() []string {
	var out []string
	for _, c := range xssContexts {
		for _, v := range xssVectors {
			out = append(out, strings.Replace(c, "%s", v, 1))
		}
	}
	return out // 8 contexts × 25 vectors = 200
}

// hostileDossier is a case where every string that can come from an
// endpoint, a rule author or a user holds p.
func hostileDossier(p string) *dossier {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	c := &Case{ID: 7, Title: p, Severity: SeverityHigh, Status: StatusResolved, Assignee: p, CreatedBy: p,
		CreatedAt: at, UpdatedAt: at, StatusBy: p, StatusAt: at, Reason: p, AlertIDs: []int64{1},
		Breach: true, BreachAwareAt: at, NIS2: true, NIS2AwareAt: at, Version: 3,
		Sent: map[Notice]time.Time{NoticeNIS2Notice: at.Add(time.Hour)}}
	fields := []event.Field{{Name: "CommandLine", Value: p}, {Name: "TargetFilename", Value: p},
		{Name: "User", Value: p}, {Name: p, Value: p}}
	a := &alert.Alert{ID: 1, RuleID: p, RuleTitle: p, Level: p, Tags: []string{"attack.t1059", "attack." + p, p},
		Host: p, AgentID: p, State: alert.StateAcknowledged, Count: 2, FirstSeen: at.Add(-time.Hour), LastSeen: at,
		Fields: fields, EventIDs: []int64{9}, Assignee: p, StateBy: p, StateAt: at, Reason: p}
	ev := eventstore.Record{ID: 9, AgentID: p, Host: p, Time: at.Add(-time.Hour), Product: p, Category: []string{p}, Fields: fields}
	return &dossier{
		c: c, alerts: []*alert.Alert{a}, events: []eventstore.Record{ev},
		stored: []Entry{
			{At: at, Actor: p, Kind: EntryCreated, Detail: p},
			{At: at, Actor: p, Kind: EntryAwareness, Detail: p},
			{At: at, Actor: p, Kind: EntryNoticeSent, Detail: p},
		},
		comments: []Comment{{ID: 1, CaseID: 7, Author: p, Text: p + "\n" + p, At: at}},
		evidence: []Evidence{
			{ID: 1, CaseID: 7, Kind: EvidenceFile, Ref: strings.Repeat("ab", 32), Name: p, Size: 3, Note: p, AddedBy: p, AddedAt: at},
			{ID: 2, CaseID: 7, Kind: EvidenceHost, Ref: p, Note: p, AddedBy: p, AddedAt: at},
		},
	}
}

func render(t *testing.T, d *dossier) string {
	t.Helper()
	var buf bytes.Buffer
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if err := reportTemplate.Execute(&buf, d.report(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), loc)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestReportXSS renders the report with each of 200 payloads in every
// attacker-controlled field (rule id, title and tags; host and agent
// names; command lines, file names, user names and field names; case
// title, assignee, reasons, comments, evidence labels and notes) and checks
// that the markup is exactly that of a benign report: the payload adds no
// tag, attribute or quote, so it is text.
func TestReportXSS(t *testing.T) {
	t.Parallel()
	benign := render(t, hostileDossier("benign"))
	structure := func(s string) [5]int {
		return [5]int{strings.Count(s, "<"), strings.Count(s, ">"), strings.Count(s, `"`), strings.Count(s, "'"),
			strings.Count(s, "=")}
	}
	want := structure(benign)
	payloads := xssPayloads()
	if len(payloads) != 200 {
		t.Fatalf("%d payloads", len(payloads))
	}
	for _, p := range payloads {
		out := render(t, hostileDossier(p))
		if strings.Contains(out, p) {
			t.Errorf("payload %q appears unescaped", p)
			continue
		}
		// Payloads carry '=' (attributes); escaping keeps them as text, so
		// count only the markup characters the escaper must neutralise.
		got := structure(out)
		if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Errorf("payload %q changes the markup: <%d >%d \"%d '%d, benign <%d >%d \"%d '%d",
				p, got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3])
		}
		for _, bad := range []string{"<script", "<img", "<svg", "<iframe", "<a ", "<link", "<base", "<meta http-equiv=\"refresh"} {
			if strings.Contains(strings.ToLower(out), strings.ToLower(bad)) {
				t.Errorf("payload %q: output contains %s", p, bad)
			}
		}
	}
}
