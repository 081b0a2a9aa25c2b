package syslog

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// FuzzParse checks that no line crashes the parser, that every event is
// valid UTF-8 and that the Reader agrees with Parse. Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Jan  1 00:00:00 host sshd[1]: Accepted password for a from 192.0.2.1 port 1 ssh2"))
	opts := Options{Reference: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		err := Parse(line, opts, &ev)
		for _, fl := range ev.Fields {
			if !utf8.ValidString(fl.Value) {
				t.Fatalf("invalid UTF-8 in %s", fl.Name)
			}
		}
		if err == nil && ev.Product != "linux" {
			t.Fatal("product not set")
		}
		if bytes.ContainsAny(line, "\n") {
			return
		}
		var ev2 event.Event
		r := NewReader(bytes.NewReader(line), opts)
		if rerr := r.Next(&ev2); rerr == nil && len(ev2.Fields) != len(ev.Fields) {
			t.Fatalf("reader and Parse disagree: %v vs %v", ev2.Fields, ev.Fields)
		}
	})
}
