package evtx

import (
	"flag"
	"fmt"
	"testing"
)

var dumpFile = flag.String("dump", "", "print the events of this EVTX file (go test -run TestDump -dump FILE)")

// TestDump prints the events of one file, for looking at the flattening.
func TestDump(t *testing.T) {
	if *dumpFile == "" {
		t.Skip("no -dump file given")
	}
	evs, st := readAll(t, *dumpFile)
	for _, ev := range evs {
		fmt.Printf("--- %d %s %s %v %v\n", ev.Record, ev.Time.Format("2006-01-02T15:04:05.000000Z"), ev.Product, ev.Services, ev.Categories)
		for _, f := range ev.Fields {
			fmt.Printf("  %s = %q\n", f.Name, f.Value)
		}
	}
	fmt.Printf("stats: %+v\n", st)
}
