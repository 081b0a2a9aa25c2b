package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/transport"
)

// AgentBenchResult is what `vigil bench agent` prints.
type AgentBenchResult struct {
	DurationS     float64 `json:"duration_s"`
	ExecsPerSec   float64 `json:"execs_per_s"`
	Execs         int     `json:"execs"`
	FileWrites    int     `json:"file_writes"`
	Connects      int     `json:"connects"`
	CPUPercent    float64 `json:"agent_cpu_percent_of_one_core"`
	RSSMB         float64 `json:"agent_rss_mb"`
	PeakRSSMB     float64 `json:"agent_peak_rss_mb"`
	EventsStored  uint64  `json:"events_stored"`
	ExecsReceived int     `json:"execs_received"`
	// CPUSeconds is the agent's utime+stime over the measurement;
	// ExecEvents counts every exec event of the host it reported in that
	// time (this benchmark's and any other process's), and CPUPerExecUS
	// divides the one by the other: a figure that stays comparable when
	// other work shares the machine.
	CPUSeconds   float64 `json:"agent_cpu_seconds"`
	ExecEvents   int     `json:"exec_events"`
	CPUPerExecUS float64 `json:"agent_cpu_us_per_exec_event"`
}

func newBenchAgentCmd() *cobra.Command {
	var agentBin string
	var duration, warmup time.Duration
	var rate int
	cmd := &cobra.Command{
		Use:   "agent --agent-binary PATH [--duration D] [--rate EXECS]",
		Short: "Measure vigil-agent's CPU and memory under steady process, file and network activity",
		Long: `Bench agent starts an embedded server, enrols a real vigil-agent process
(--agent-binary) with its process, auth-log and file-integrity sensors, and then
keeps this host busy: RATE process executions per second, a file rewritten in a
watched directory ten times a second and a TCP connection a second. It reads the
agent's CPU time and resident memory from /proc before and after and prints one
JSON object. Needs root (the sensors do).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runBenchAgent(cmd.Context(), agentBin, duration, warmup, rate)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().StringVar(&agentBin, "agent-binary", "bin/vigil-agent", "the vigil-agent binary to measure")
	cmd.Flags().DurationVar(&duration, "duration", 60*time.Second, "how long to measure")
	cmd.Flags().DurationVar(&warmup, "warmup", 10*time.Second, "time for the agent to start (file baseline) before measuring")
	cmd.Flags().IntVar(&rate, "rate", 100, "process executions per second")
	return cmd
}

func runBenchAgent(ctx context.Context, agentBin string, duration, warmup time.Duration, rate int) (*AgentBenchResult, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bench agent needs root: the agent's sensors use audit and fanotify")
	}
	bin, err := filepath.Abs(agentBin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("agent binary: %w (build it with go build -o bin/vigil-agent ./cmd/vigil-agent)", err)
	}
	dir, err := os.MkdirTemp("", "vigil-bench-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(ctx, serverConfig{Data: filepath.Join(dir, "server"), Listen: "127.0.0.1:0", Rules: defaultBenchRules(), Workers: 1, Retention: time.Hour, MaxBytes: 1 << 30})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	url := "https://" + srv.Addr().String()
	plain, tok := transport.NewToken(time.Now().UTC(), time.Hour, 1, "bench agent")
	if err := srv.db.CreateEnrollToken(ctx, tok); err != nil {
		return nil, err
	}
	watched := filepath.Join(dir, "watched")
	os.MkdirAll(watched, 0o755)
	agentData := filepath.Join(dir, "agent")
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data_dir: %s\nhealth_every: 10s\nsensors:\n  fim_paths: [/etc, /usr/bin, /usr/sbin, /root/.ssh, %s]\n", agentData, watched)), 0o600)
	if out, err := exec.CommandContext(ctx, bin, "enroll", "--config", conf, "--server", url, "--token", plain, "--ca-fingerprint", srv.auth.CAFingerprint()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("enrol: %v: %s", err, out)
	}
	args := []string{"run", "--config", conf}
	if p := os.Getenv("VIGIL_AGENT_CPUPROFILE"); p != "" {
		args = append(args, "--cpuprofile", p, "--cpuprofile-after", warmup.String())
	}
	if p := os.Getenv("VIGIL_AGENT_MEMPROFILE"); p != "" {
		args = append(args, "--memprofile", p)
	}
	agent := exec.CommandContext(ctx, bin, args...)
	if err := agent.Start(); err != nil {
		return nil, err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	pid := agent.Process.Pid
	time.Sleep(warmup)

	res := &AgentBenchResult{}
	cpu0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stop := time.Now().Add(duration)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	marker := fmt.Sprintf("vigil-bench-%d", start.UnixNano())
	for i := 0; time.Now().Before(stop); i++ {
		<-tick.C
		if err := exec.Command("/bin/true", marker, strconv.Itoa(i)).Run(); err == nil {
			res.Execs++
		}
		if i%(max(rate/10, 1)) == 0 {
			os.WriteFile(filepath.Join(watched, "config.ini"), []byte(fmt.Sprint("generation=", i, "\n")), 0o644)
			res.FileWrites++
		}
		if i%max(rate, 1) == 0 {
			if c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
				c.Close()
				res.Connects++
			}
		}
	}
	elapsed := time.Since(start)
	cpu1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	res.DurationS = elapsed.Seconds()
	res.ExecsPerSec = float64(res.Execs) / elapsed.Seconds()
	res.CPUPercent = 100 * (cpu1 - cpu0) / elapsed.Seconds()
	res.RSSMB, res.PeakRSSMB = procRSS(pid)

	// Let delivery finish, then count what arrived.
	time.Sleep(3 * time.Second)
	for _, w := range srv.workers {
		res.EventsStored += w.Stats().Events
	}
	res.ExecsReceived = countMarker(ctx, srv, marker)
	res.CPUSeconds = cpu1 - cpu0
	res.ExecEvents = countExecs(ctx, srv, start, start.Add(elapsed))
	if res.ExecEvents > 0 {
		res.CPUPerExecUS = 1e6 * res.CPUSeconds / float64(res.ExecEvents)
	}
	return res, nil
}

// countExecs counts stored exec events timed between from and to.
func countExecs(ctx context.Context, s *Server, from, to time.Time) int {
	n := 0
	var before int64
	for {
		recs, err := s.db.Search(ctx, eventstore.Query{Category: "process_creation", From: from, To: to, Limit: 1000, Before: before})
		if err != nil || len(recs) == 0 {
			return n
		}
		n += len(recs)
		before = recs[len(recs)-1].ID
	}
}

// countMarker counts stored exec events whose command line has the marker.
func countMarker(ctx context.Context, s *Server, marker string) int {
	n := 0
	var before int64
	for {
		recs, err := s.db.Search(ctx, searchQuery(marker, before))
		if err != nil || len(recs) == 0 {
			return n
		}
		n += len(recs)
		before = recs[len(recs)-1].ID
	}
}

func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil
}

func procRSS(pid int) (rss, peak float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return
}

func searchQuery(text string, before int64) eventstore.Query {
	return eventstore.Query{Text: text, Category: "process_creation", Limit: 1000, Before: before}
}
