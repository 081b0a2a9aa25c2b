package winevent_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// classifyCase is one row of testdata/classify.golden.json: the input
// (Channel, EventID, optional EventType and extra fields) and the expected
// log source and aliases.
type classifyCase struct {
	Channel    string            `json:"channel"`
	EventID    string            `json:"event_id"`
	EventType  string            `json:"event_type,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
	Services   []string          `json:"services"`
	Categories []string          `json:"categories"`
	Aliases    map[string]string `json:"aliases,omitempty"`
}

func TestClassifyGolden(t *testing.T) {
	path := filepath.Join("testdata", "classify.golden.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []classifyCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		c := &cases[i]
		var ev event.Event
		ev.Add("Channel", c.Channel)
		ev.Add("EventID", c.EventID)
		if c.EventType != "" {
			ev.Add("EventType", c.EventType)
		}
		for _, k := range sortedKeys(c.Fields) {
			ev.Add(k, c.Fields[k])
		}
		before := len(ev.Fields)
		winevent.Classify(&ev)
		got := classifyCase{Channel: c.Channel, EventID: c.EventID, EventType: c.EventType, Fields: c.Fields,
			Services: ev.Services, Categories: ev.Categories}
		if ev.Product != "windows" {
			t.Errorf("%s/%s: product %q", c.Channel, c.EventID, ev.Product)
		}
		for _, f := range ev.Fields[before:] {
			if got.Aliases == nil {
				got.Aliases = map[string]string{}
			}
			got.Aliases[f.Name] = f.Value
		}
		if *update {
			*c = got
			continue
		}
		want, _ := json.Marshal(c)
		have, _ := json.Marshal(got)
		if !bytes.Equal(want, have) {
			t.Errorf("case %d:\n got %s\nwant %s", i, have, want)
		}
	}
	if *update {
		out, err := json.MarshalIndent(cases, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	var ev event.Event
	ev.Add("Channel", "Microsoft-Windows-Sysmon/Operational")
	ev.Add("EventID", "13")
	if n := testing.AllocsPerRun(100, func() { winevent.Classify(&ev) }); n != 0 {
		t.Errorf("Classify allocates %v times", n)
	}
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
