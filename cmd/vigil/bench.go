package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/simagent"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/transport/client"
	"github.com/vigil-edr/vigil/internal/wire"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure Vigil on this machine"}
	cmd.AddCommand(newBenchIngestCmd(), newBenchAgentCmd())
	return cmd
}

type benchConfig struct {
	Agents     int
	Duration   time.Duration
	Rate       int // events/s for all agents together; 0 = as fast as possible
	BatchSize  int
	Suspicious int
	Rules      []string
	Data       string
	Workers    int
	CPUProfile string
}

// BenchResult is what `vigil bench ingest` prints.
type BenchResult struct {
	Agents         int     `json:"agents"`
	DurationS      float64 `json:"duration_s"`
	TargetRate     int     `json:"target_rate"`
	Rules          int     `json:"rules"`
	Sent           uint64  `json:"sent"`
	Acked          uint64  `json:"acked"`
	Stored         int64   `json:"stored"`
	EPS            float64 `json:"eps"`
	AckedEPS       float64 `json:"acked_eps"`
	Alerts         int     `json:"alert_occurrences"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	Lost           int64   `json:"lost"`
	Duplicates     int64   `json:"duplicates"`
	RSSMB          float64 `json:"rss_mb"`
	DiskBytesEvent float64 `json:"disk_bytes_per_event"`
	CPUPerEventUS  float64 `json:"cpu_us_per_event"`
	Rejected429    uint64  `json:"rate_limited"`
}

func newBenchIngestCmd() *cobra.Command {
	cfg := benchConfig{}
	cmd := &cobra.Command{
		Use:   "ingest [--agents N] [--duration D] [--rate EPS]",
		Short: "Run an embedded server and N simulated agents over real mTLS, then check what was stored",
		Long: `Bench ingest starts an embedded server in a temporary directory with the given
rules, enrols N simulated agents over real mTLS on loopback and has them send
realistic Linux telemetry in batches for the duration. It then waits until every
acknowledged event is stored and evaluated and prints one JSON object:

  eps         events stored and evaluated per second, start to last event scanned
  p50_ms/p99_ms  event sent → alert stored, over every alert occurrence
  lost        acknowledged events missing from the store (must be 0)
  duplicates  events stored more than once (must be 0)
  cpu_us_per_event  process CPU time (user + system, server and simulated
              agents together) from the first batch sent to the last event
              scanned, per stored event: the cost measure that a loaded
              machine disturbs least`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.CPUProfile != "" {
				f, err := os.Create(cfg.CPUProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := runBenchIngest(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return enc.Encode(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Agents, "agents", 8, "simulated agents")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long the agents send")
	f.IntVar(&cfg.Rate, "rate", 0, "total events/s to offer (0: as fast as the server takes them)")
	f.IntVar(&cfg.BatchSize, "batch", 1000, "events per batch")
	f.IntVar(&cfg.Suspicious, "suspicious", 1, "percent of events written to trigger rules")
	f.StringArrayVar(&cfg.Rules, "rules", nil, "rule paths (default: ./rules and, when present, ../shared/corpus/sigma/rules*)")
	f.StringVar(&cfg.Data, "data", "", "data directory (default: a temporary one, removed afterwards)")
	f.IntVar(&cfg.Workers, "workers", 2, "detection workers")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

func defaultBenchRules() []string {
	var out []string
	for _, p := range []string{"rules", "../shared/corpus/sigma/rules", "../shared/corpus/sigma/rules-threat-hunting"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func runBenchIngest(parent context.Context, cfg benchConfig) (*BenchResult, error) {
	if cfg.Agents <= 0 || cfg.BatchSize <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("--agents, --batch and --duration must be positive")
	}
	if len(cfg.Rules) == 0 {
		cfg.Rules = defaultBenchRules()
	}
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Data = dir
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	var latMu sync.Mutex
	var lat []time.Duration
	srv, err := startServer(ctx, serverConfig{
		Data: cfg.Data, Listen: "127.0.0.1:0", Rules: cfg.Rules, Workers: cfg.Workers,
		Retention: 24 * time.Hour, MaxBytes: 1 << 40,
		OnAlert: func(f alert.Finding, _ bool, at time.Time) {
			latMu.Lock()
			lat = append(lat, at.Sub(f.Time))
			latMu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	res := &BenchResult{Agents: cfg.Agents, TargetRate: cfg.Rate, Rules: len(srv.rules.Current().Engine.Rules())}

	// Enrol every agent with one token over real mTLS.
	plain, tok := transport.NewToken(time.Now().UTC(), time.Hour, cfg.Agents, "bench")
	if err := srv.db.CreateEnrollToken(ctx, tok); err != nil {
		return nil, err
	}
	url := "https://" + srv.Addr().String()
	trust := client.Trust{CAPool: srv.auth.CAPool()}
	clients := make([]*client.Client, cfg.Agents)
	for i := range clients {
		id, err := client.Enroll(ctx, url, plain, trust, client.HostInfo{Hostname: fmt.Sprintf("bench-%03d", i), OS: "linux", Arch: "amd64", Version: version})
		if err != nil {
			return nil, fmt.Errorf("enrol agent %d: %w", i, err)
		}
		if clients[i], err = client.New(url, id); err != nil {
			return nil, err
		}
	}

	// Send.
	var sent, acked, limited atomic.Uint64
	ackedMax := make([]uint64, cfg.Agents)
	var pace *pacer
	if cfg.Rate > 0 {
		pace = newPacer(cfg.Rate)
	}
	start, startCPU := time.Now(), processCPU()
	sendCtx, stopSending := context.WithTimeout(ctx, cfg.Duration)
	defer stopSending()
	var wg sync.WaitGroup
	var sendErr atomic.Value
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := simagent.New(uint64(i+1), cfg.Suspicious)
			ev := &event.Event{}
			for sendCtx.Err() == nil {
				if pace != nil && !pace.wait(sendCtx, cfg.BatchSize) {
					return
				}
				b := &wire.Batch{Version: wire.Version, BootEpoch: 1}
				now := time.Now()
				for j := 0; j < cfg.BatchSize; j++ {
					seq, _ := g.Next(ev, now)
					b.Events = append(b.Events, wire.FromEvent(seq, ev))
				}
				body, err := wire.Encode(b, "zstd")
				if err != nil {
					sendErr.Store(err)
					return
				}
				sent.Add(uint64(len(b.Events)))
				// Retry the same batch until it is acknowledged: at-least-once,
				// as the agent's spool does; the server dedupes.
				for {
					status, resp, retry, err := c.SendBatch(ctx, body, "zstd")
					if err == nil && status == http.StatusOK {
						acked.Add(uint64(len(b.Events)))
						ackedMax[i] = b.LastSeq()
						break
					}
					if status == http.StatusTooManyRequests {
						limited.Add(1)
					}
					if err == nil && status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
						sendErr.Store(fmt.Errorf("agent %d: status %d: %s", i, status, resp))
						return
					}
					if retry <= 0 {
						retry = 50 * time.Millisecond
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(retry):
					}
				}
			}
		}()
	}
	wg.Wait()
	sendWindow := time.Since(start)
	if err, ok := sendErr.Load().(error); ok && err != nil {
		return nil, err
	}

	// Wait for detection to catch up with everything acknowledged.
	deadline := time.Now().Add(5*time.Minute + cfg.Duration)
	var stored int64
	for {
		var scanned uint64
		for _, w := range srv.workers {
			scanned += w.Stats().Scanned
		}
		if scanned >= acked.Load() {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("detection did not catch up: %d of %d acknowledged events scanned", scanned, acked.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), processCPU()-startCPU

	// Check what was stored against what was acknowledged.
	counts, err := srv.db.SequenceAudit(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range clients {
		a := counts[c.Identity().AgentID]
		// Every acknowledged sequence 1..ackedMax must be stored once.
		missing := int64(ackedMax[i]) - a.DistinctUpTo(ackedMax[i])
		res.Lost += max(missing, 0)
		res.Duplicates += a.Rows - a.Distinct
		stored += a.Rows
	}
	res.Sent, res.Acked, res.Stored, res.Rejected429 = sent.Load(), acked.Load(), stored, limited.Load()
	res.DurationS = sendWindow.Seconds()
	res.AckedEPS = float64(res.Acked) / sendWindow.Seconds()
	res.EPS = float64(res.Stored) / elapsed.Seconds()
	if res.Stored > 0 {
		res.CPUPerEventUS = float64(cpu.Microseconds()) / float64(res.Stored)
	}
	latMu.Lock()
	res.Alerts = len(lat)
	res.P50ms, res.P99ms = percentileMS(lat, 50), percentileMS(lat, 99)
	latMu.Unlock()
	res.RSSMB = peakRSSMB()
	if res.Stored > 0 {
		res.DiskBytesEvent = float64(dirSize(cfg.Data)) / float64(res.Stored)
	}
	return res, nil
}

func percentileMS(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	// Nearest rank: the smallest value with at least p % of the data at or below it.
	i := (len(s)*p+99)/100 - 1
	return float64(s[max(i, 0)].Microseconds()) / 1000
}

// peakRSSMB reads the process's peak resident set (VmHWM) on Linux.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// pacer hands out events at a fixed total rate.
type pacer struct {
	mu   sync.Mutex
	next time.Time
	per  time.Duration
}

func newPacer(rate int) *pacer {
	return &pacer{next: time.Now(), per: time.Second / time.Duration(rate)}
}

func (p *pacer) wait(ctx context.Context, n int) bool {
	p.mu.Lock()
	at := p.next
	if now := time.Now(); at.Before(now) {
		at = now
	}
	p.next = at.Add(time.Duration(n) * p.per)
	p.mu.Unlock()
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(at)):
		return true
	}
}
