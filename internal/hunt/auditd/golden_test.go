package auditd

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// TestGolden reads testdata/records.log (records written for these tests)
// through a coalescing Reader and compares the events, rendered as text,
// with testdata/records.log.golden; ParseRecord errors are listed too. Run
// `go test -update` and review the diff to change it.
func TestGolden(t *testing.T) {
	const file = "testdata/records.log"
	in, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for i, line := range strings.Split(strings.TrimSuffix(string(in), "\n"), "\n") {
		if _, err := ParseRecord([]byte(line)); err != nil {
			fmt.Fprintf(&out, "line %d: %v\n", i+1, err)
		}
	}
	out.WriteByte('\n')
	r := NewReader(bytes.NewReader(in), Options{Coalesce: true, Source: "records.log"})
	var ev event.Event
	for r.Next(&ev) == nil {
		fmt.Fprintf(&out, "# record %d %s %s %s/%s/%s\n", ev.Record, ev.Time.Format(time.RFC3339Nano), ev.Source,
			ev.Product, strings.Join(ev.Services, ","), strings.Join(ev.Categories, ","))
		for _, f := range ev.Fields {
			fmt.Fprintf(&out, "  %s: %q\n", f.Name, f.Value)
		}
	}
	fmt.Fprintf(&out, "\nstats: %+v\n", r.Stats())
	golden := file + ".golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from %s; run go test -update and review the diff:\n%s", golden, out.String())
	}
}
