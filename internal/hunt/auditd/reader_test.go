package auditd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vigil-edr/vigil/internal/event"
)

func execGroup(serial, pid int, arg string) string {
	return fmt.Sprintf("type=SYSCALL msg=audit(1700000000.000:%d): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=%d auid=1000 uid=1000 exe=\"/bin/echo\"\n"+
		"type=EXECVE msg=audit(1700000000.000:%d): argc=2 a0=\"echo\" a1=\"%s\"\n", serial, pid, serial, arg)
}

func readAll(t *testing.T, r *Reader) (records int, procs []*event.Event) {
	t.Helper()
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.HasCategory("process_creation") {
			procs = append(procs, ev.Clone())
		} else {
			records++
		}
	}
}

// TestCoalesceInterleavedAndEvicted checks interleaved serials, groups that
// never see PROCTITLE or EOE (flushed at the end), eviction when too many
// serials are pending, and that late records of a completed serial are
// ignored.
func TestCoalesceInterleavedAndEvicted(t *testing.T) {
	var in strings.Builder
	in.WriteString(execGroup(1, 11, "one"))
	in.WriteString(execGroup(2, 12, "two"))
	in.WriteString("type=CWD msg=audit(1700000000.000:1): cwd=\"/one\"\n")
	in.WriteString("type=PROCTITLE msg=audit(1700000000.000:1): proctitle=\"echo one\"\n")
	in.WriteString("type=EOE msg=audit(1700000000.000:1): \n")
	in.WriteString("type=PATH msg=audit(1700000000.000:1): item=0 name=\"/late\"\n") // late: ignored
	in.WriteString(execGroup(3, 13, "three"))
	in.WriteString(execGroup(4, 14, "four")) // evicts 2 (max 2 pending)
	r := NewReader(strings.NewReader(in.String()), Options{Coalesce: true, MaxPending: 2})
	records, procs := readAll(t, r)
	if records != 12 {
		t.Errorf("%d record events, want 12", records)
	}
	var got []string
	for _, p := range procs {
		c, _ := p.Get("CommandLine")
		d, _ := p.Get("CurrentDirectory")
		got = append(got, c+"@"+d)
	}
	want := []string{"echo one@/one", "echo two@", "echo three@", "echo four@"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("process events %q, want %q", got, want)
	}
	if st := r.Stats(); st.Evicted != 1 || st.Processes != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestCommandLineSplitArgs(t *testing.T) {
	rec, err := ParseRecord([]byte(`type=EXECVE msg=audit(1.0:1): argc=3 a0="sh" a1_len=9 a1[0]=2D63 a1[1]="echo" a1[2]=2068 a2="x" a3="beyond argc"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := commandLine(&rec); got != "sh -cecho h x" {
		t.Errorf("commandLine = %q", got)
	}
}

func TestReaderTruncation(t *testing.T) {
	long := "type=PATH msg=audit(1.000:5): item=0 name=\"" + strings.Repeat("a", 500) + "\" nametype=NORMAL\n"
	in := long + "type=CWD msg=audit(1.000:5): cwd=\"/\"\n"
	r := NewReader(iotest.HalfReader(strings.NewReader(in)), Options{MaxLineBytes: 100})
	records, _ := readAll(t, r)
	if st := r.Stats(); records != 2 || st.Truncated != 1 || st.Lines != 2 {
		t.Errorf("records %d, stats %+v", records, st)
	}
}

func TestParseRecordAllocs(t *testing.T) {
	line := "type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 ppid=1 pid=2 auid=1000 uid=0 comm=\"sh\" exe=\"/bin/sh\" key=(null)"
	var rec Record
	var ev event.Event
	allocs := testing.AllocsPerRun(100, func() {
		_ = parseRecord(line, &rec)
		ev.Reset()
		fillEvent(&ev, &rec)
	})
	if allocs > 0 {
		t.Errorf("%.0f allocations per record, want 0 once buffers are warm", allocs)
	}
}

func BenchmarkReader(b *testing.B) {
	dir := corpusDir(b, "auditd/auparse/testdata")
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var data []byte
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, d...)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			data = append(data, '\n')
		}
	}
	lines := bytes.Count(data, []byte("\n"))
	for _, co := range []bool{false, true} {
		b.Run(fmt.Sprintf("coalesce=%v", co), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var ev event.Event
			for b.Loop() {
				r := NewReader(bytes.NewReader(data), Options{Coalesce: co})
				for r.Next(&ev) == nil {
				}
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// A long argument list continues in further EXECVE records of the same
// event; the command line joins them all (it used to keep only the first).
func TestCommandLineAcrossExecveRecords(t *testing.T) {
	in := "type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=99 auid=0 uid=0 exe=\"/usr/bin/tar\"\n" +
		"type=EXECVE msg=audit(1700000000.000:9): argc=4 a0=\"tar\" a1=\"-czf\"\n" +
		"type=EXECVE msg=audit(1700000000.000:9): a2=\"/tmp/x.tgz\" a3=\"/etc\"\n" +
		"type=EOE msg=audit(1700000000.000:9): \n"
	_, procs := readAll(t, NewReader(strings.NewReader(in), Options{Coalesce: true}))
	if len(procs) != 1 {
		t.Fatalf("%d process events", len(procs))
	}
	if c, _ := procs[0].Get("CommandLine"); c != "tar -czf /tmp/x.tgz /etc" {
		t.Errorf("CommandLine = %q", c)
	}
}
