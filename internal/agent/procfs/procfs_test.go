package procfs

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseStat(t *testing.T) {
	var out []string
	for _, line := range []string{
		"4242 (sleep) S 4200 4242 4200 34816 4242 4194304 103 0 0 0 0 0 0 0 20 0 1 0 987654 8519680 215 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
		"77 (a (b) c) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0",
		"1 (init",
		"x (y) S 1 2 3",
	} {
		st, err := ParseStat([]byte(line))
		b, _ := json.Marshal(st)
		e := "<nil>"
		if err != nil {
			e = err.Error()
		}
		out = append(out, line+"\n=> "+string(b)+" err="+e)
	}
	got := strings.Join(out, "\n") + "\n"
	path := filepath.Join("testdata", "stat.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, got)
	}
}

// TestParseSelf: this process's own stat parses, with its pid.
func TestParseSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	st, err := ParseStat(b)
	if err != nil || st.PID != os.Getpid() || st.PPID != os.Getppid() || st.Start == 0 {
		t.Fatalf("ParseStat(/proc/self/stat) = %+v, %v", st, err)
	}
}

// FuzzParseStat: never panics; what it accepts has a positive pid.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (sleep) S 4200 4242 4200 34816 4242 4194304 103 0 0 0 0 0 0 0 20 0 1 0 987654 8519680"))
	f.Add([]byte("77 (a (b) c) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 42 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err == nil && (st.PID <= 0 || st.PPID < 0) {
			t.Fatalf("accepted %+v", st)
		}
	})
}
