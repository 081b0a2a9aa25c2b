package atomics

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-edr/vigil/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata goldens")

// debianPrograms is a fixed "typical Debian server" for the golden plan, so
// the golden does not depend on what the test machine has installed.
var debianPrograms = set(
	"awk", "base64", "bash", "cat", "chattr", "chmod", "chown", "cp", "crontab", "curl", "cut", "date", "dd",
	"env", "find", "free", "gpg", "grep", "groups", "gzip", "head", "hostname", "id", "ip", "kmod", "ls",
	"lsmod", "mkdir", "mv", "netstat", "openssl", "ping", "ps", "python3", "rm", "rmdir", "sed", "seq", "sh",
	"sleep", "sort", "split", "ss", "strings", "sudo", "sync", "sysctl", "systemctl", "tail", "tar", "tee",
	"touch", "truncate", "uname", "uniq", "uptime", "wc", "wget", "who", "whoami", "xargs", "xxd", "yes",
	"zip", "shred", "lsof", "lscpu", "service", "setsid", "nohup", "mkfifo", "useradd", "su", "printenv",
	"which", "basename", "dirname", "tr", "sha256sum", "stat", "file", "nc", "tput",
)

func goldenHost(dir string) Host {
	return Host{
		OS: "linux", Root: true, AtomicsDir: dir, IsolatedNetwork: true,
		HasProgram: func(n string) bool { return debianPrograms[n] },
		FileExists: func(string) bool { return false },
	}
}

// The plan for every test of the corpus, as a golden file: what runs, what
// is skipped and why. Review its diff like code (go test -update rewrites).
func TestPlanCorpus(t *testing.T) {
	dir := testkit.Corpus(t, "atomics")
	techs, errs := LoadDir(dir)
	for _, err := range errs {
		t.Error(err)
	}
	if len(techs) != 61 {
		t.Fatalf("loaded %d technique files, want the corpus's 61", len(techs))
	}
	var b strings.Builder
	counts := map[Reason]int{}
	linux := 0
	for _, tech := range techs {
		for i := range tech.Tests {
			tt := &tech.Tests[i]
			if !tt.SupportsPlatform("linux") {
				continue
			}
			linux++
			d := Plan(tt, goldenHost("/atomics"))
			counts[d.Reason]++
			verdict := "run"
			if !d.Run() {
				verdict = "skip: " + string(d.Reason) + ": " + d.Detail
			}
			fmt.Fprintf(&b, "%s\t%s\t%s\n", tt.ID(), tt.Name, verdict)
		}
	}
	if linux != 214 {
		t.Errorf("%d Linux tests, want the corpus's 214", linux)
	}
	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("plan differs from %s (go test -update rewrites it; review the diff):\n%s", golden, lineDiff(string(want), got))
	}
	t.Logf("Linux tests %d: %v", linux, counts)
	// Tests that must never run, whatever else changes.
	for _, id := range []string{"T1070.004 #8", "T1529 #3", "T1529 #16", "T1685 #44", "T1548.003 #1", "T1548.003 #3", "T1548.003 #5", "T1685.004 #1"} {
		if l := lineFor(b.String(), id+"\t"); l == "" || l.verdictRun() {
			t.Errorf("%s must be denied", id)
		}
	}
}

type planLine string

func (l planLine) verdictRun() bool { return strings.HasSuffix(string(l), "\trun") }

func lineFor(all, prefix string) planLine {
	for _, l := range strings.Split(all, "\n") {
		if strings.HasPrefix(l, prefix) {
			return planLine(l)
		}
	}
	return ""
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

func TestPlanReasons(t *testing.T) {
	base := func() *Test {
		return &Test{Name: "x", Technique: "T1000", Number: 1, Platforms: []string{"linux"},
			Executor: Executor{Name: "sh", Command: "echo hi"}}
	}
	cases := []struct {
		name   string
		edit   func(*Test, *Host)
		reason Reason
		detail string
	}{
		{"runs", func(*Test, *Host) {}, ReasonNone, ""},
		{"platform", func(t *Test, _ *Host) { t.Platforms = []string{"windows"} }, ReasonPlatform, "windows"},
		{"macos name", func(t *Test, h *Host) { t.Platforms = []string{"macos"}; h.OS = "darwin" }, ReasonNone, ""},
		{"executor", func(t *Test, _ *Host) { t.Executor.Name = "powershell" }, ReasonExecutor, "powershell"},
		{"manual", func(t *Test, _ *Host) { t.Executor = Executor{Name: "manual", Steps: "click"} }, ReasonExecutor, "manual"},
		{"dependency executor", func(t *Test, _ *Host) {
			t.DependencyExecutor = "powershell"
			t.Dependencies = []Dependency{{PrereqCommand: "x"}}
		}, ReasonExecutor, "prerequisites"},
		{"elevation", func(t *Test, h *Host) { t.Executor.ElevationRequired = true; h.Root = false }, ReasonElevation, ""},
		{"elevation as root", func(t *Test, h *Host) { t.Executor.ElevationRequired = true }, ReasonNone, ""},
		{"argument", func(t *Test, _ *Host) { t.Executor.Command = "cat #{file}" }, ReasonArgument, "file"},
		{"argument default", func(t *Test, _ *Host) {
			t.Executor.Command = "cat #{file}"
			t.Args = map[string]Arg{"file": {Default: "/etc/hostname"}}
		}, ReasonNone, ""},
		{"missing tool", func(t *Test, _ *Host) { t.Executor.Command = "nmap -sS 10.0.0.0/8" }, ReasonTool, "nmap"},
		{"guarded tool", func(t *Test, _ *Host) {
			t.Executor.Command = `if [ -x "$(command -v nmap)" ]; then nmap localhost; fi`
		}, ReasonNone, ""},
		{"tool after sudo", func(t *Test, _ *Host) { t.Executor.Command = "sudo nmap localhost" }, ReasonTool, "nmap"},
		{"tool inside sh -c", func(t *Test, _ *Host) { t.Executor.Command = `sh -c "ls | nmap x"` }, ReasonTool, "nmap"},
		{"tool in substitution", func(t *Test, _ *Host) { t.Executor.Command = `echo $(nmap x)` }, ReasonTool, "nmap"},
		{"function is no tool", func(t *Test, _ *Host) { t.Executor.Command = "f(){ echo; }\nf /etc/passwd" }, ReasonNone, ""},
		{"heredoc body is no command", func(t *Test, _ *Host) { t.Executor.Command = "cat <<EOF > /tmp/x\nnmap is here\nEOF\nls" }, ReasonNone, ""},
		{"atomics file", func(t *Test, _ *Host) { t.Executor.Command = "sh PathToAtomicsFolder/T1000/src/x.sh" }, ReasonFile, "/atomics/T1000/src/x.sh"},
		{"atomics file via argument", func(t *Test, _ *Host) {
			t.Executor.Command = "sh #{script}"
			t.Args = map[string]Arg{"script": {Default: "$PathToAtomicsFolder/T1000/src/y.sh"}}
		}, ReasonFile, "/atomics/T1000/src/y.sh"},
		{"reboot", func(t *Test, _ *Host) { t.Executor.Command = "sleep 1; reboot" }, ReasonDenied, "shutdown"},
		{"technique T1529", func(t *Test, _ *Host) { t.Technique = "T1529" }, ReasonDenied, "shutdown"},
		{"rm -rf /", func(t *Test, _ *Host) { t.Executor.Command = "rm -rf / --no-preserve-root" }, ReasonDenied, "wipe"},
		{"rm -rf /tmp/x is fine", func(t *Test, _ *Host) { t.Executor.Command = "rm -rf /tmp/x" }, ReasonNone, ""},
		{"dd to a disk", func(t *Test, _ *Host) { t.Executor.Command = "dd if=/dev/zero of=/dev/sda bs=1M" }, ReasonDenied, "wipe"},
		{"insmod", func(t *Test, _ *Host) { t.Executor.Command = "sudo insmod /tmp/x.ko" }, ReasonDenied, "kernel-module"},
		{"userdel in command", func(t *Test, _ *Host) { t.Executor.Command = "userdel -r bob" }, ReasonDenied, "delete-account"},
		{"userdel in cleanup", func(t *Test, _ *Host) {
			t.Executor.Command = "useradd art"
			t.Executor.CleanupCommand = "userdel -fr art"
		}, ReasonNone, ""},
		{"history wipe", func(t *Test, _ *Host) { t.Executor.Command = `echo "" > $HISTFILE` }, ReasonDenied, "wipe-logs"},
		{"log wipe", func(t *Test, _ *Host) { t.Executor.Command = "rm -rf /var/log/syslog" }, ReasonDenied, "wipe-logs"},
		{"history -c is fine", func(t *Test, _ *Host) { t.Executor.Command = "history -c" }, ReasonNone, ""},
		{"auditctl -D", func(t *Test, _ *Host) { t.Executor.Command = "auditctl -D" }, ReasonDenied, "blind-sensor"},
		{"vim", func(t *Test, _ *Host) { t.Executor.Command = "sudo vim /etc/sudoers" }, ReasonDenied, "interactive"},
		{"vim in echo is fine", func(t *Test, _ *Host) { t.Executor.Command = "echo vim is great" }, ReasonNone, ""},
		{"sudoers without cleanup", func(t *Test, _ *Host) {
			t.Executor.Command = `sudo sed -i 's/env_reset.*$/env_reset,timestamp_timeout=-1/' /etc/sudoers`
		}, ReasonDenied, "no-cleanup"},
		{"append without cleanup", func(t *Test, _ *Host) { t.Executor.Command = `echo x >> /etc/sudoers` }, ReasonDenied, "no-cleanup"},
		{"system file with cleanup", func(t *Test, _ *Host) {
			t.Executor.Command = `echo x > /etc/cron.d/x`
			t.Executor.CleanupCommand = "rm -f /etc/cron.d/x"
		}, ReasonNone, ""},
		{"tmp file without cleanup", func(t *Test, _ *Host) { t.Executor.Command = `echo x > /tmp/x` }, ReasonNone, ""},
		{"firewall, isolated", func(t *Test, _ *Host) { t.Executor.Command = "iptables -F" }, ReasonNone, ""},
		{"firewall, host network", func(t *Test, h *Host) { t.Executor.Command = "iptables -F"; h.IsolatedNetwork = false }, ReasonDenied, "host-network"},
		{"denied prerequisite", func(t *Test, _ *Host) {
			t.Dependencies = []Dependency{{PrereqCommand: "insmod /tmp/x.ko"}}
		}, ReasonDenied, "kernel-module"},
		{"denied cleanup", func(t *Test, _ *Host) { t.Executor.CleanupCommand = "reboot" }, ReasonDenied, "shutdown"},
		{"BSD sed in cleanup", func(t *Test, _ *Host) {
			t.Executor.Command = "echo x >> /etc/x"
			t.Executor.CleanupCommand = `sed -i "" '/x/d' /etc/x`
		}, ReasonDenied, "bsd-cleanup"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tt := base()
			h := goldenHost("/atomics")
			h.HasProgram = func(n string) bool { return n != "nmap" }
			c.edit(tt, &h)
			d := Plan(tt, h)
			if d.Reason != c.reason || !strings.Contains(d.Detail, c.detail) {
				t.Errorf("Plan = %q (%s), want %q containing %q", d.Reason, d.Detail, c.reason, c.detail)
			}
		})
	}
}

func TestPrograms(t *testing.T) {
	cases := []struct{ script, want string }{
		{"ls -la /tmp", "ls"},
		{"a | b && c || d; e & f", "a b c d e f"},
		{"X=1 Y=2 env -i FOO=bar nmap x", "env nmap"},
		{"sudo -u bob id", "sudo id"},
		{"timeout 5 ping -c1 x", "timeout ping"},
		{"if [ -f x ]; then cat x; else echo no; fi", "cat"},
		{"for i in $(seq 1 3); do ping $i; done", "seq ping"},
		{"while read l; do grep x; done < file", "grep"},
		{"cmd=`uname`", "uname"},
		{`echo "$(id -u) $(hostname)"`, "id hostname"},
		{"$which_python -c 'x'", ""},
		{"/usr/bin/ls; ./a.out", ""},
		{"bash -c 'trap \"nohup sh x\" EXIT'", "bash"}, // trap's argument is not read
		{"f() { tar x; }; f", "tar"},
		{"echo $((1+2))", ""},
		{"# comment ls\nwc -l", "wc"},
		{"cat x 2>/dev/null | sort", "cat sort"},
		{"echo x > file; tee -a y < z", "tee"},
		{"case $x in a) ls;; esac; id", "id"},
		{"command -v nmap && nmap x", "nmap"},
	}
	for _, c := range cases {
		got := strings.Join(Programs(c.script), " ")
		if got != c.want {
			t.Errorf("Programs(%q) = %q, want %q", c.script, got, c.want)
		}
	}
}
