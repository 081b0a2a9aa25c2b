package auditd

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// FuzzParseRecord checks that no line crashes ParseRecord or a coalescing
// Reader and that events hold valid UTF-8. Seeds live in
// testdata/fuzz/FuzzParseRecord.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`type=EXECVE msg=audit(1.000:1): argc=1 a0="x"`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := ParseRecord(line)
		if err == nil && rec.Type == "" {
			t.Fatal("record without type")
		}
		// Two copies make the coalescer see a group and its late records.
		in := append(append(bytes.Clone(line), '\n'), line...)
		r := NewReader(bytes.NewReader(in), Options{Coalesce: true, MaxPending: 1, MaxLineBytes: 256})
		var ev event.Event
		for r.Next(&ev) == nil {
			for _, fl := range ev.Fields {
				if !utf8.ValidString(fl.Value) {
					t.Fatalf("invalid UTF-8 in %s", fl.Name)
				}
			}
		}
	})
}
