package sca

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

var at = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

func resultEvent(mod func(ev *event.Event)) *event.Event {
	ev := &event.Event{Time: at, Product: "linux", Categories: []string{CategoryResult}}
	for _, kv := range [][2]string{{"ScanId", "abc"}, {"PolicyId", "vigil_debian12"}, {"CheckId", "90001"}, {"Title", "t"},
		{"Status", "failed"}, {"Reason", "r"}, {"Compliance", `{"gdpr":["32(1)(b)"]}`}, {"Rules", `[{"rule":"f:/x","outcome":"not_found","reason":"no","extra":1}]`}} {
		ev.Add(kv[0], kv[1])
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func set(name, v string) func(*event.Event) {
	return func(ev *event.Event) {
		for i := range ev.Fields {
			if ev.Fields[i].Name == name {
				ev.Fields[i].Value = v
				return
			}
		}
		ev.Add(name, v)
	}
}

func TestResultFromEvent(t *testing.T) {
	r, ok, err := ResultFromEvent(resultEvent(nil))
	if !ok || err != nil || r.CheckID != 90001 || r.Compliance["gdpr"][0] != "32(1)(b)" || !r.ScannedAt.Equal(at) ||
		string(r.Rules) != `[{"rule":"f:/x","outcome":"not_found","reason":"no"}]` {
		t.Fatalf("%+v %v %v", r, ok, err)
	}
	if _, ok, _ := ResultFromEvent(&event.Event{Categories: []string{"process_creation"}}); ok {
		t.Error("other categories are not results")
	}
	for name, mod := range map[string]func(*event.Event){
		"CheckId":    set("CheckId", "x"),
		"Status":     set("Status", "maybe"),
		"Compliance": set("Compliance", "[1]"),
		"Rules":      set("Rules", "{"),
		"PolicyId":   set("PolicyId", ""),
		"UTF-8":      set("Reason", "\xff"),
		"long":       set("Title", strings.Repeat("x", maxText+1)),
		"time":       func(ev *event.Event) { ev.Time = time.Time{} },
	} {
		if _, ok, err := ResultFromEvent(resultEvent(mod)); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func summaryEvent(mod func(*event.Event)) *event.Event {
	ev := &event.Event{Time: at, Product: "linux", Categories: []string{CategorySummary}}
	for _, kv := range [][2]string{{"ScanId", "abc"}, {"PolicyId", "p"}, {"PolicyName", "P"}, {"Passed", "3"}, {"Failed", "1"},
		{"NotApplicable", "2"}, {"Total", "6"}, {"Score", "75"}, {"Applicable", "true"}, {"DurationMs", "12"}} {
		ev.Add(kv[0], kv[1])
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func TestSummaryFromEvent(t *testing.T) {
	s, ok, err := SummaryFromEvent(summaryEvent(nil))
	if !ok || err != nil || s.Passed != 3 || s.Total != 6 || s.Score != 75 || !s.Applicable || s.DurationMs != 12 {
		t.Fatalf("%+v %v", s, err)
	}
	for name, mod := range map[string]func(*event.Event){
		"sum":   set("Total", "7"),
		"score": set("Score", "101"),
		"neg":   set("Passed", "-1"),
		"int":   set("Failed", "x"),
	} {
		if _, ok, err := SummaryFromEvent(summaryEvent(mod)); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
