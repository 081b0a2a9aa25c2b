package fdwait

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Waiter blocks in poll(2) on one descriptor at a time until it is
// readable, a timeout passes or its context ends. It is used by one
// goroutine at a time.
type Waiter struct {
	ctx  context.Context
	efd  int
	stop func() bool
	fds  [2]unix.PollFd
}

// New returns a Waiter whose waits end when ctx ends. Close releases it.
func New(ctx context.Context) (*Waiter, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	w := &Waiter{ctx: ctx, efd: efd}
	w.stop = context.AfterFunc(ctx, func() {
		one := [8]byte{1}
		unix.Write(efd, one[:])
	})
	return w, nil
}

// Wait blocks until fd is readable (or has an error or hang-up to report
// to the next read), timeout passes (a negative timeout never does), or the
// Waiter's context ends, which returns the context's error.
func (w *Waiter) Wait(fd int, timeout time.Duration) (readable bool, err error) {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := -1
		if timeout >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		w.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		w.fds[1] = unix.PollFd{Fd: int32(w.efd), Events: unix.POLLIN}
		n, err := unix.Poll(w.fds[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		if w.fds[1].Revents != 0 || w.ctx.Err() != nil {
			return false, context.Cause(w.ctx)
		}
		if n > 0 && w.fds[0].Revents != 0 {
			return true, nil
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return false, nil
		}
	}
}

// Close stops watching the context and releases the Waiter.
func (w *Waiter) Close() error {
	w.stop()
	return unix.Close(w.efd)
}
