package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of a NetLab: the host is HostServerIP towards the server and
// HostInternetIP towards the internet.
const (
	LabServerIP       = "10.77.1.2"
	LabInternetIP     = "10.77.2.2"
	LabHostServerIP   = "10.77.1.1"
	LabHostInternetIP = "10.77.2.1"
)

// NetLab is three network namespaces: Host (where an agent's firewall rules
// go) joined by veth pairs to Server (LabServerIP) and Inet
// (LabInternetIP). The namespaces are deleted when the test ends.
type NetLab struct {
	t                  *testing.T
	Host, Server, Inet string
}

// Run runs a command and fails the test with its output if it fails.
func Run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewNetLab builds the namespaces, named prefix+h|s|i and the process id,
// or skips the test under -short, without root, or without ip and nft.
func NewNetLab(t *testing.T, prefix string) *NetLab {
	if testing.Short() {
		t.Skip("network namespace test: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install iproute2 nftables)", bin)
		}
	}
	id := os.Getpid() % 100000
	l := &NetLab{t: t, Host: fmt.Sprintf("%sh%d", prefix, id), Server: fmt.Sprintf("%ss%d", prefix, id), Inet: fmt.Sprintf("%si%d", prefix, id)}
	for _, ns := range []string{l.Host, l.Server, l.Inet} {
		exec.Command("ip", "netns", "del", ns).Run() // left over by a killed run
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	pair := func(peer, hostIf, peerIf, hostIP, peerIP string) {
		Run(t, "ip", "link", "add", hostIf, "netns", l.Host, "type", "veth", "peer", "name", peerIf, "netns", peer)
		Run(t, "ip", "-n", l.Host, "addr", "add", hostIP+"/24", "dev", hostIf)
		Run(t, "ip", "-n", peer, "addr", "add", peerIP+"/24", "dev", peerIf)
		Run(t, "ip", "-n", l.Host, "link", "set", hostIf, "up")
		Run(t, "ip", "-n", peer, "link", "set", peerIf, "up")
	}
	pair(l.Server, "to-srv", "to-host", LabHostServerIP, LabServerIP)
	pair(l.Inet, "to-net", "to-host", LabHostInternetIP, LabInternetIP)
	return l
}

// In runs fn on an OS thread moved into namespace ns. The goroutine exits
// locked, so the runtime throws the thread away and nothing else runs in
// ns; sockets fn creates stay in ns whichever thread uses them later.
func (l *NetLab) In(ns string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			l.t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			l.t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// Listen accepts (and closes) TCP connections on addr in ns until the test ends.
func (l *NetLab) Listen(ns, addr string) {
	var ln net.Listener
	l.In(ns, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			l.t.Error(err)
		}
	})
	if ln == nil {
		l.t.FailNow()
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// Reach reports whether a TCP connection from ns to addr succeeds.
func (l *NetLab) Reach(ns, addr string) bool {
	ok := false
	l.In(ns, func() {
		c, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

// Ruleset is the host namespace's whole nftables ruleset.
func (l *NetLab) Ruleset() string {
	return Run(l.t, "ip", "netns", "exec", l.Host, "nft", "list", "ruleset")
}
