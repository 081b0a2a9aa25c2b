package main

import (
	"bufio"
	"context"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/wire"
)

// lineSensor records each line of its input as one event (category
// agent_test, the line in Message). It exists for tests that drive the real
// agent binary without kernel sensors (`run --test-input`): the crash test
// writes lines while it kills the agent.
type lineSensor struct {
	in     io.Reader
	events atomic.Uint64
}

func newLineSensor(in io.Reader) *lineSensor { return &lineSensor{in: in} }

var testCats = []string{"agent_test"}

func (s *lineSensor) Name() string { return "test-input" }

func (s *lineSensor) Health() wire.SensorHealth {
	return wire.SensorHealth{Mechanism: "stdin", State: wire.SensorRunning}
}

// Run reads lines until the input ends or ctx does; a read blocked on the
// input when ctx ends is abandoned (the process is about to exit).
func (s *lineSensor) Run(ctx context.Context, out func(*event.Event)) error {
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(s.in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	ev := &event.Event{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				<-ctx.Done()
				return nil
			}
			ev.Reset()
			ev.Time, ev.Product, ev.Categories = time.Now().UTC(), runtime.GOOS, testCats
			ev.Add("Message", l)
			out(ev)
			s.events.Add(1)
		}
	}
}
