package inventory

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUeventModuleSignal: the uevent reader, on a real kernel netlink
// socket, signals a module add and ignores other subsystems. The uevents
// are sent to the multicast group from a throwaway network namespace, so
// nothing else on the host sees them.
func TestUeventModuleSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and send to the uevent group")
	}
	type pair struct {
		recv, send int
		err        error
	}
	got := make(chan pair, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, so the
		// changed namespace never runs other goroutines.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			got <- pair{err: err}
			return
		}
		recv, err := openUevent()
		if err != nil {
			got <- pair{err: err}
			return
		}
		send, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
		if err == nil {
			err = unix.Bind(send, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		}
		got <- pair{recv, send, err}
	}()
	p := <-got
	if p.err != nil {
		t.Skipf("no private network namespace with uevent sockets: %v", p.err)
	}
	defer unix.Close(p.send)
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	signals := make(chan struct{}, 1)
	go func() { defer close(done); s.readUevents(ctx, p.recv, signals) }()
	defer func() { cancel(); <-done }()
	send := func(msg string) {
		if err := unix.Sendto(p.send, []byte(msg), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
			t.Fatal(err)
		}
	}
	send("change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00")
	select {
	case <-signals:
		t.Fatal("a net uevent signalled a module change")
	case <-time.After(300 * time.Millisecond):
	}
	send("add@/module/vigil_test\x00ACTION=add\x00DEVPATH=/module/vigil_test\x00SUBSYSTEM=module\x00SEQNUM=1\x00")
	select {
	case <-signals:
	case <-time.After(2 * time.Second):
		t.Fatal("no signal for a module add uevent")
	}
	if st := s.Status(); st.Uevents != 1 {
		t.Errorf("Uevents %d, want 1", st.Uevents)
	}
}
