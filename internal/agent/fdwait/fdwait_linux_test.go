package fdwait

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func TestWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, wr := pipe(t)

	// Nothing to read: the timeout passes.
	start := time.Now()
	if ok, err := w.Wait(r, 50*time.Millisecond); ok || err != nil {
		t.Fatalf("empty pipe: Wait = %v, %v; want false, nil", ok, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("empty pipe: Wait returned after %v, before its 50 ms timeout", d)
	}

	// Data written while waiting without a timeout wakes the wait.
	go func() { time.Sleep(20 * time.Millisecond); unix.Write(wr, []byte("x")) }()
	if ok, err := w.Wait(r, -1); !ok || err != nil {
		t.Fatalf("written pipe: Wait = %v, %v; want true, nil", ok, err)
	}
	var b [8]byte
	if n, _ := unix.Read(r, b[:]); n != 1 {
		t.Fatalf("read %d bytes, want 1", n)
	}

	// The context's end wakes a wait without a timeout.
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if ok, err := w.Wait(r, -1); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: Wait = %v, %v; want false, context.Canceled", ok, err)
	}
}

func TestPause(t *testing.T) {
	var p Pauser
	start := time.Now()
	if !p.Pause(context.Background(), 30*time.Millisecond) || time.Since(start) < 30*time.Millisecond {
		t.Error("Pause(30 ms) returned early or false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.Pause(ctx, time.Hour) {
		t.Error("Pause with an ended context returned true")
	}
}
