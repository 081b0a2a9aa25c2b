//go:build linux

package process

import (
	"fmt"
	"os"
	"testing"
)

// benchRecords are the netlink messages of one execve as the kernel sends
// them (type, text), with %d for the serial.
var benchRecords = []struct {
	typ  uint16
	text string
}{
	{1300, `audit(1764281400.123:%d): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1b2a2a0 a1=55d0c1b2a2d0 a2=55d0c1b2a2e8 a3=0 items=2 ppid=%d pid=%d auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="true" exe="/usr/bin/true" subj=unconfined key="vigil_exec"`},
	{1309, `audit(1764281400.123:%d): argc=3 a0="/bin/true" a1="vigil-bench" a2=68656C6C6F20776F726C64`},
	{1307, `audit(1764281400.123:%d): cwd="/home/user"`},
	{1302, `audit(1764281400.123:%d): item=0 name="/bin/true" inode=1234 dev=fd:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`},
	{1302, `audit(1764281400.123:%d): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=5678 dev=fd:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`},
	{1327, `audit(1764281400.123:%d): proctitle=2F62696E2F74727565007669676C2D62656E6368`},
	{1320, `audit(1764281400.123:%d): `},
}

// BenchmarkPipeline measures the user-space work per exec on the receive
// path: building lines, parsing, coalescing and enriching (user, parent,
// start time, cgroup and hash cache lookups), without the netlink receive
// itself. "gone" names a pid above the kernel's largest pid_max (the
// common case: the exec'd process has exited by the time its records are
// read; one failed open), "alive" this process (/proc/PID/stat and
// /proc/PID/cgroup read; the comm check fails, so no ProcessStartTime).
func BenchmarkPipeline(b *testing.B) {
	b.Run("gone", func(b *testing.B) { benchPipeline(b, 1<<22+1) })
	b.Run("alive", func(b *testing.B) { benchPipeline(b, os.Getpid()) })
}

func benchPipeline(b *testing.B, pid int) {
	opts := Options{}
	opts.setDefaults()
	p := newPipeline(&opts)
	ppid := 1 // in the parent table after the first exec
	var msgs [][]byte
	for _, r := range benchRecords {
		msgs = append(msgs, nil)
		_ = r
	}
	b.ReportAllocs()
	serial := 0
	for b.Loop() {
		serial++
		for i, r := range benchRecords {
			if i == 0 {
				msgs[i] = fmt.Appendf(msgs[i][:0], r.text, serial, ppid, pid)
			} else {
				msgs[i] = fmt.Appendf(msgs[i][:0], r.text, serial)
			}
			p.record(r.typ, msgs[i])
		}
		if _, ok := p.next(); !ok {
			b.Fatal("no event")
		}
	}
}
