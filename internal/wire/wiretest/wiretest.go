// Package wiretest builds realistic wire batches for tests and benchmarks of
// the packages that carry them (wire, ingest, bus consumers). Only tests may
// import it.
package wiretest

import (
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/wire"
)

var (
	services   = []string{"auditd"}
	categories = []string{"process_creation"}
	base       = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
)

var commands = [...][3]string{
	{"/usr/bin/curl", "curl -fsSL https://repo.example.org/install.sh -o /tmp/install.sh", "/bin/bash"},
	{"/usr/bin/ssh", "ssh -o StrictHostKeyChecking=no deploy@10.20.30.40 uptime", "/usr/bin/zsh"},
	{"/usr/bin/python3", "python3 /opt/app/manage.py migrate --noinput --settings=app.settings.prod", "/usr/bin/make"},
	{"/usr/bin/tar", "tar -czf /var/backups/home-2025-03-14.tar.gz /home/alice /home/bob", "/usr/sbin/cron"},
	{"/usr/bin/sudo", "sudo systemctl restart nginx.service", "/bin/bash"},
	{"/usr/bin/git", "git -C /srv/repo fetch --prune origin '+refs/heads/*:refs/remotes/origin/*'", "/usr/bin/fish"},
}

// Batch returns a batch of n process_creation events of about 600 bytes of
// JSON each, with sequence numbers firstSeq, firstSeq+1, ….
func Batch(n int, bootEpoch, firstSeq uint64) *wire.Batch {
	b := &wire.Batch{Version: wire.Version, BootEpoch: bootEpoch, Events: make([]wire.Event, n)}
	for i := range b.Events {
		seq := firstSeq + uint64(i)
		c := commands[seq%uint64(len(commands))]
		pid := strconv.FormatUint(1000+seq%60000, 10)
		b.Events[i] = wire.Event{
			Seq:        seq,
			Time:       base.Add(time.Duration(seq) * 1371 * time.Microsecond),
			Product:    "linux",
			Services:   services,
			Categories: categories,
			Fields: wire.Fields{
				{Name: "Image", Value: c[0]},
				{Name: "CommandLine", Value: c[1]},
				{Name: "ParentImage", Value: c[2]},
				{Name: "ParentCommandLine", Value: c[2] + " -l"},
				{Name: "ProcessId", Value: pid},
				{Name: "ParentProcessId", Value: strconv.FormatUint(999+seq%50000, 10)},
				{Name: "User", Value: "alice"},
				{Name: "LogonId", Value: "1000"},
				{Name: "CurrentDirectory", Value: "/home/alice/src/project"},
				{Name: "Hashes", Value: "SHA256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
				{Name: "TerminalSessionId", Value: "3"},
				{Name: "exe_inode", Value: strconv.FormatUint(1<<20+seq*7919%65536, 10)},
			},
		}
	}
	return b
}
