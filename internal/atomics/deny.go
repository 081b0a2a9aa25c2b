package atomics

import (
	"regexp"
	"strings"
)

// DenyEntry is one kind of behaviour `vigil validate atomics` refuses to
// run on a real host, however the test is labelled. Atomic Red Team's
// format has no "destructive" flag, so the decision is made from what the
// commands do.
type DenyEntry struct {
	Name string
	Why  string
	// Techniques denied whole (ATT&CK ids; a parent id covers its
	// sub-techniques).
	Techniques []string
	// Pattern is matched against the command and the prerequisite
	// commands, after argument substitution; with Cleanup also against the
	// cleanup command.
	Pattern *regexp.Regexp
	// Programs: the entry applies when the commands run one of these
	// (see Programs; a word in an echo does not count).
	Programs []string
	Cleanup  bool
	// CleanupPattern is matched against the cleanup command only.
	CleanupPattern *regexp.Regexp
	// OnlyWithoutCleanup: the entry applies only to a test that has no
	// cleanup command (a change it never undoes).
	OnlyWithoutCleanup bool
	// OnlyHostNetwork: the entry applies only when tests share the host's
	// network namespace (not with the default isolated network).
	OnlyHostNetwork bool
}

// start of a command word: line start or a shell separator before it.
const cw = `(?:^|[\s;&|(` + "`" + `]|\$\()`

// end of a command word.
const we = `(?:$|[\s;&|)])`

// system paths whose change outlives a test.
const sysPath = `"?(?:/etc/|/usr/|/boot/|/lib|/bin/|/sbin/|/opt/|/var/spool/|/var/lib/|/root/\.|/home/[^/\s]+/\.|~/\.|\$HOME/\.|/proc/sys/|/sys/)`

// Denylist is the documented list of what is never run (also in README).
var Denylist = []DenyEntry{
	{
		Name: "shutdown", Why: "shuts down, reboots or suspends the machine",
		Techniques: []string{"T1529"}, Cleanup: true,
		Pattern: regexp.MustCompile(cw + `(?:shutdown|reboot|halt|poweroff|telinit\s+[0-6s]|init\s+[06]|kexec)` + we +
			`|systemctl\s+(?:\S+\s+)*(?:reboot|poweroff|halt|kexec|suspend|hibernate|emergency|rescue)` + we +
			`|sysrq-trigger|/proc/sys/kernel/sysrq`),
	},
	{
		Name: "wipe", Why: "deletes the filesystem, wipes or repartitions a disk, or changes every file",
		Cleanup: true,
		Pattern: regexp.MustCompile(`--no-preserve-root` +
			`|` + cw + `rm\s+(?:-\S+\s+)*"?/\*?"?` + we +
			`|` + cw + `(?:chmod|chown|chgrp|chattr)\s+(?:-\S+\s+)*-R\s+(?:\S+\s+)?/` + we +
			`|` + cw + `(?:mkfs(?:\.\w+)?|wipefs|fdisk|sfdisk|cfdisk|parted|blkdiscard|mkswap|cryptsetup)` + we +
			`|` + cw + `dd\s[^\n]*of=/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|dm-|mapper|disk|md)` +
			`|` + `>\s*/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|dm-|md)` +
			`|` + cw + `shred\s[^\n]*/dev/`),
	},
	{
		Name: "kernel-module", Why: "loads or unloads kernel modules (the host's kernel itself)",
		Cleanup: true,
		Pattern: regexp.MustCompile(cw + `(?:sudo\s+)?(?:insmod|rmmod|modprobe|kldload|kldunload)` + we + `|init_module|finit_module`),
	},
	{
		Name: "delete-account", Why: "deletes a user or group account (only accounts a test creates may be deleted, by its cleanup)",
		Pattern: regexp.MustCompile(cw + `(?:userdel|deluser|rmuser|groupdel|delgroup)` + we + `|pw\s+(?:user|group)del`),
	},
	{
		Name: "wipe-logs", Why: "wipes shell history or system logs of the real host",
		Pattern: regexp.MustCompile(`>\s*"?(?:\$HISTFILE|\$\{HISTFILE\}|~/\.\w*_?history|\S*/\.\w*_?history|/var/log/|/var/run/utmp|/run/utmp)` +
			`|` + cw + `(?:rm|shred|truncate|unlink|srm)\s[^\n;|&]*(?:/var/log/|\.\w*_?history|\$HISTFILE)` +
			`|` + cw + `ln\s[^\n;|&]*/dev/null\s+\S*history` +
			`|journalctl\s[^\n]*--(?:vacuum|rotate)` +
			`|` + cw + `(?:utmpdump|logrotate\s+-f)` + we),
	},
	{
		Name: "blind-sensor", Why: "deletes the kernel audit rules or locks audit: Vigil's process sensor would be blind for the rest of the run",
		Cleanup: true,
		Pattern: regexp.MustCompile(cw + `auditctl\s[^\n;|&]*(?:-D|-e\s*2)` + we + `|` + cw + `(?:pkill|killall)\s[^\n]*vigil`),
	},
	{
		Name: "swap", Why: "turns swap off, which can exhaust memory on a loaded host",
		Pattern: regexp.MustCompile(cw + `swapoff` + we),
	},
	{
		Name: "interactive", Why: "opens an interactive editor that waits for a terminal",
		Programs: []string{"vi", "vim", "nvim", "nano", "emacs", "ee", "pico", "joe", "mcedit", "vipw", "vigr"},
	},
	{
		Name: "fork-bomb", Why: "exhausts processes or memory",
		Cleanup: true,
		Pattern: regexp.MustCompile(`:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:` + `|` + cw + `kill\s+-9\s+-1` + we),
	},
	{
		Name: "no-cleanup", Why: "changes system files, services or kernel settings and has no cleanup command to undo it",
		OnlyWithoutCleanup: true,
		Pattern: regexp.MustCompile(`>>?\s*` + sysPath +
			`|` + cw + `tee\s+(?:-\S+\s+)*` + sysPath +
			`|` + cw + `sed\s+(?:-\S+\s+)*-i\S*\s[^\n;|&]*` + sysPath +
			`|` + cw + `(?:cp|mv|install|ln|rm|chmod|chown|chgrp|chattr|setfacl|touch|mkdir)\s[^\n;|&]*\s` + sysPath +
			`|` + cw + `(?:systemctl\s+(?:stop|disable|mask)|service\s+\S+\s+stop|sysctl\s+-w|crontab\s+[^-\s])`),
	},
	{
		Name: "bsd-cleanup", Why: "the cleanup uses BSD sed -i \"\", which GNU sed reads differently, so the change would stay",
		CleanupPattern: regexp.MustCompile(`sed\s+-i\s*(?:""|'')\s`),
	},
	{
		Name: "host-network", Why: "changes the host's firewall, routes or interfaces (allowed only in the isolated network namespace)",
		OnlyHostNetwork: true, Cleanup: true,
		Pattern: regexp.MustCompile(cw + `(?:iptables|ip6tables|iptables-restore|nft|ufw|firewall-cmd|pfctl|ebtables|tc)` + we +
			`|` + cw + `ip\s+(?:-\S+\s+)*(?:link|addr|address|route|rule|neigh|tunnel)\s+(?:add|del|delete|set|flush|change|replace)` +
			`|` + cw + `ifconfig\s+\S+\s+(?:down|up|\d)` + `|>\s*/etc/(?:resolv\.conf|hosts)`),
	},
}

// Denied returns the first denylist entry that applies, or nil.
func Denied(command, cleanup string, prereqs []string, technique string, isolatedNetwork bool) *DenyEntry {
	progs := map[string][]string{} // Programs of each text, read once
	for i := range Denylist {
		e := &Denylist[i]
		if e.OnlyHostNetwork && isolatedNetwork {
			continue
		}
		if e.OnlyWithoutCleanup && strings.TrimSpace(cleanup) != "" {
			continue
		}
		for _, id := range e.Techniques {
			if technique == id || strings.HasPrefix(technique, id+".") {
				return e
			}
		}
		if e.CleanupPattern != nil && e.CleanupPattern.MatchString(cleanup) {
			return e
		}
		texts := append([]string{command}, prereqs...)
		if e.Cleanup {
			texts = append(texts, cleanup)
		}
		for _, s := range texts {
			if e.Pattern != nil && e.Pattern.MatchString(s) {
				return e
			}
			if len(e.Programs) > 0 {
				ps, ok := progs[s]
				if !ok {
					ps = Programs(s)
					progs[s] = ps
				}
				for _, p := range ps {
					for _, q := range e.Programs {
						if p == q {
							return e
						}
					}
				}
			}
		}
	}
	return nil
}
