package syslog

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// TestGolden reads every testdata/*.log (lines written for these tests) and
// compares the events, rendered as text, with testdata/*.log.golden. Run
// `go test -update` to rewrite the golden files and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	opts := Options{Reference: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC), Location: time.FixedZone("CEST", 2*3600)}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			var ev event.Event
			for i, line := range strings.Split(strings.TrimSuffix(string(in), "\n"), "\n") {
				err := Parse([]byte(line), opts, &ev)
				fmt.Fprintf(&out, "# %d: %q\n", i+1, line)
				renderEvent(&out, &ev, err)
			}
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
				t.Errorf("output differs from %s; run go test -update and review the diff\n%s", golden, firstDiff(out.String(), string(want)))
			}
		})
	}
}

func renderEvent(w *bytes.Buffer, ev *event.Event, err error) {
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
	}
	if !ev.Time.IsZero() {
		fmt.Fprintf(w, "time: %s\n", ev.Time.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "source: %s %s\n", ev.Product, strings.Join(ev.Services, ","))
	for _, f := range ev.Fields {
		fmt.Fprintf(w, "  %s: %q\n", f.Name, f.Value)
	}
	w.WriteByte('\n')
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, a, b)
		}
	}
	return ""
}
