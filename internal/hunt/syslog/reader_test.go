package syslog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

func TestReaderLinesAndTruncation(t *testing.T) {
	long := "Jan  2 03:04:05 host app[1]: " + strings.Repeat("x", 300)
	in := "Jan  2 03:04:05 host app[1]: first\r\n\n   \n" + long + "\nnot a syslog line\nJan  2 03:04:06 host app: last without newline"
	r := NewReader(iotest.OneByteReader(strings.NewReader(in)), Options{
		Reference: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), Source: "mem", MaxLineBytes: 100,
	})
	var ev event.Event
	type got struct {
		rec uint64
		msg string
	}
	var all []got
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Source != "mem" {
			t.Errorf("Source = %q", ev.Source)
		}
		m, _ := ev.Get(FieldMessage)
		all = append(all, got{ev.Record, m})
	}
	want := []got{{1, "first"}, {4, strings.Repeat("x", 100-len("Jan  2 03:04:05 host app[1]: "))}, {5, "not a syslog line"}, {6, "last without newline"}}
	if len(all) != len(want) {
		t.Fatalf("got %v, want %v", all, want)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, all[i], want[i])
		}
	}
	st := r.Stats()
	if st != (Stats{Lines: 6, Events: 4, Empty: 2, Malformed: 1, Truncated: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(iotest.ErrReader(boom), Options{})
	var ev event.Event
	if err := r.Next(&ev); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestYearRollover(t *testing.T) {
	var ev event.Event
	ref := time.Date(2024, 1, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		line string
		want time.Time
	}{
		{"Dec 31 23:00:00 h p: x", time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC)},
		{"Jan  2 11:00:00 h p: x", time.Date(2024, 1, 2, 11, 0, 0, 0, time.UTC)},
		{"Jan  3 09:00:00 h p: x", time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC)}, // within a day of the reference
		{"Jan  4 09:00:00 h p: x", time.Date(2023, 1, 4, 9, 0, 0, 0, time.UTC)},
	} {
		if err := Parse([]byte(c.line), Options{Reference: ref}, &ev); err != nil {
			t.Fatal(err)
		}
		if !ev.Time.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.line, ev.Time, c.want)
		}
	}
}

// TestServicesShared checks that the Services slices are the shared ones and
// that a parse does not allocate beyond the one string per line.
func TestServicesShared(t *testing.T) {
	var ev event.Event
	opts := Options{Reference: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}
	line := []byte("Jun  1 10:00:00 host sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2")
	_ = Parse(line, opts, &ev)
	if &ev.Services[0] != &svcSSHD[0] {
		t.Error("sshd event does not use the shared services slice")
	}
	allocs := testing.AllocsPerRun(100, func() { _ = Parse(line, opts, &ev) })
	if allocs > 1 {
		t.Errorf("Parse allocates %.0f times per line, want 1", allocs)
	}
}

func benchFile(b *testing.B, rel string) {
	path := filepath.Join(corpusDir(b, "logs/loghub"), rel)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Count(data, []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ev event.Event
	opts := Options{Reference: time.Date(2005, 12, 31, 0, 0, 0, 0, time.UTC)}
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), opts)
		for r.Next(&ev) == nil {
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkReader(b *testing.B) {
	b.Run("OpenSSH_2k", func(b *testing.B) { benchFile(b, "OpenSSH/OpenSSH_2k.log") })
	b.Run("Linux_2k", func(b *testing.B) { benchFile(b, "Linux/Linux_2k.log") })
}
