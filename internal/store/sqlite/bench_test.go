//go:build unix

package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

var (
	benchServices   = []string{"sysmon"}
	benchCategories = []string{"process_creation"}
)

// processEvent returns a realistic Sysmon-style process creation event with
// 20 fields, varied by i so that the full-text index grows as in real use.
func processEvent(i int, t time.Time) *event.Event {
	e := &event.Event{Time: t, Product: "windows", Services: benchServices, Categories: benchCategories}
	pid := 4000 + i%50000
	e.Add("EventID", "1")
	e.Add("UtcTime", t.Format("2006-01-02 15:04:05.000"))
	e.Add("ProcessGuid", fmt.Sprintf("{5770385f-c22a-%04x-%04x-000000001c00}", i&0xffff, (i>>16)&0xffff))
	e.Add("ProcessId", fmt.Sprint(pid))
	e.Add("Image", fmt.Sprintf(`C:\Program Files\Vendor%d\bin\tool%d.exe`, i%37, i%113))
	e.Add("FileVersion", "10.0.19041.1")
	e.Add("Description", "Windows Command Processor")
	e.Add("Product", "Microsoft® Windows® Operating System")
	e.Add("Company", "Microsoft Corporation")
	e.Add("OriginalFileName", "Cmd.Exe")
	e.Add("CommandLine", fmt.Sprintf(`"C:\Windows\system32\cmd.exe" /c echo job %d > C:\Users\user%d\AppData\Local\Temp\out%d.txt`, i, i%20, i))
	e.Add("CurrentDirectory", fmt.Sprintf(`C:\Users\user%d\`, i%20))
	e.Add("User", fmt.Sprintf(`CORP\user%d`, i%20))
	e.Add("LogonGuid", "{5770385f-c22a-5e0e-0000-0020e5080300}")
	e.Add("LogonId", "0x308e5")
	e.Add("IntegrityLevel", "Medium")
	e.Add("Hashes", fmt.Sprintf("SHA256=%064x,IMPHASH=%032x", i*2654435761, i*40503))
	e.Add("ParentProcessGuid", "{5770385f-c22a-5e0e-0000-0010a2d90200}")
	e.Add("ParentProcessId", fmt.Sprint(pid-1))
	e.Add("ParentImage", `C:\Windows\explorer.exe`)
	e.Add("ParentCommandLine", `C:\Windows\Explorer.EXE`)
	return e
}

// BenchmarkInsert measures stored events per second, full-text index on, in
// batches the ingest consumer uses.
func BenchmarkInsert(b *testing.B) {
	for _, batch := range []int{1000, 5000} {
		for _, index := range []bool{true, false} {
			b.Run(fmt.Sprintf("batch=%d/index=%v", batch, index), func(b *testing.B) {
				benchInsert(b, batch, index)
			})
		}
	}
}

// benchInsert inserts b.N batches. With index set, the full-text indexer
// runs alongside and the timing includes waiting for it to catch up at the
// end; without, indexing is paused and only the commit path is measured.
func benchInsert(b *testing.B, batch int, index bool) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.PauseIndexer(!index)
	// Pre-build a pool of events; Insert does not keep them.
	const pool = 20000
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]*event.Event, pool)
	for i := range evs {
		evs[i] = processEvent(i, base.Add(time.Duration(i)*time.Millisecond))
	}
	batchBuf := make([]eventstore.Stored, batch)
	seq := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		for j := range batchBuf {
			seq++
			batchBuf[j] = eventstore.Stored{AgentID: "agent-1", BootEpoch: 1, Seq: seq, Host: "ws-17", Event: evs[int(seq)%pool]}
		}
		if _, err := db.Insert(ctx, batchBuf); err != nil {
			b.Fatal(err)
		}
	}
	if index {
		if err := db.WaitIndexed(ctx); err != nil {
			b.Fatal(err)
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*batch), "ns/event")
	// CPU time per event is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch), "cpu-ns/event")
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
