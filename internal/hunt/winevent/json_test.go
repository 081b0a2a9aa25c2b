package winevent_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

func TestFromJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // "Name=Value", in any order
	}{
		{
			name: "system with qualifiers and nulls",
			in: `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Service Control Manager","EventSourceName":"Service Control Manager"}},
				"EventID":{"#attributes":{"Qualifiers":16384},"#text":7045},"Correlation":null,"Security":null,
				"TimeCreated":{"#attributes":{"SystemTime":"2019-05-12T12:52:43.702578Z"}},"EventRecordID":10446,"Channel":"System"},
				"EventData":{"ServiceName":"x","Empty":"","Gone":null}}}`,
			want: []string{"Provider_Name=Service Control Manager", "Provider_EventSourceName=Service Control Manager",
				"EventID_Qualifiers=16384", "EventID=7045", "TimeCreated_SystemTime=2019-05-12T12:52:43.702578Z",
				"EventRecordID=10446", "Channel=System", "ServiceName=x", "Empty="},
		},
		{
			name: "unnamed data and binary",
			in: `{"Event":{"System":{"EventID":15457,"Channel":"Application"},
				"EventData":{"Data":["show advanced options","0","1"],"Binary":"AB01"}}}`,
			want: []string{"EventID=15457", "Channel=Application", "Data=show advanced options", "Data=0", "Data=1", "Binary=AB01"},
		},
		{
			name: "data text array",
			in:   `{"Event":{"System":{"EventID":1,"Channel":"Application"},"EventData":{"Data":{"#text":["a","b"]}}}}`,
			want: []string{"EventID=1", "Channel=Application", "Data=a", "Data=b"},
		},
		{
			name: "user data",
			in: `{"Event":{"System":{"EventID":1102,"Channel":"Security"},"UserData":{"LogFileCleared":{
				"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
				"SubjectUserName":"bob","Target":{"#attributes":{"Kind":"file"},"#text":"C:\\x"},"Nothing":null}}}}`,
			want: []string{"EventID=1102", "Channel=Security", "SubjectUserName=bob", "Target_Kind=file", "Target=C:\\x"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tc.in))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			var ev event.Event
			if !winevent.FromJSON(m, &ev) {
				t.Fatal("FromJSON returned false")
			}
			var got []string
			for _, f := range ev.Fields {
				got = append(got, f.Name+"="+f.Value)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestFromJSONNotWindows(t *testing.T) {
	var ev event.Event
	for _, m := range []map[string]any{nil, {"Event": "x"}, {"Event": map[string]any{"EventData": map[string]any{}}}} {
		if winevent.FromJSON(m, &ev) {
			t.Errorf("FromJSON(%v) = true", m)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-07-17T14:18:34.072213Z", "2026-07-17T14:18:34.0722130Z", "2026-07-17T16:18:34.072213+02:00"} {
		tm, ok := winevent.ParseTime(s)
		if !ok || tm.Format("2006-01-02T15:04:05.000000Z07:00") != "2026-07-17T14:18:34.072213Z" {
			t.Errorf("ParseTime(%q) = %v, %v", s, tm, ok)
		}
	}
	for _, s := range []string{"", "2026-13-17T14:18:34Z", "yesterday"} {
		if _, ok := winevent.ParseTime(s); ok {
			t.Errorf("ParseTime(%q) succeeded", s)
		}
	}
}
