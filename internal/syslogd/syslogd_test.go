package syslogd

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

type collected struct {
	mu    sync.Mutex
	seqs  map[string][]uint64
	progs []string
}

func (c *collected) sink(_ context.Context, src string, epoch, first uint64, evs []*event.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ev := range evs {
		c.seqs[src] = append(c.seqs[src], first+uint64(i))
		p, _ := ev.Get("Program")
		c.progs = append(c.progs, p)
	}
	return nil
}

func (c *collected) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.progs)
}

func TestUDPAndTCP(t *testing.T) {
	c := &collected{seqs: map[string][]uint64{}}
	s, err := Listen(Options{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Sink: c.sink, FlushEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	udp, tcp := s.Addrs()

	u, err := net.Dial("udp", udp.String())
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("<38>Dec 10 06:55:46 fw1 sshd[24200]: Failed password for root from 10.0.0.9 port 4242 ssh2"))
	u.Close()
	tc, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte("<34>1 2026-11-27T10:00:00Z web1 sudo 77 - - alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/bash\n"))
	tc.Write([]byte("<13>Nov 27 10:00:01 web1 cron[1]: (root) CMD (true)\n"))
	tc.Close()

	deadline := time.Now().Add(5 * time.Second)
	for c.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if c.count() != 3 {
		t.Fatalf("received %d events, want 3 (programs %v)", c.count(), c.progs)
	}
	seqs := c.seqs["syslog:127.0.0.1"]
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequences %v are not 1..n", seqs)
		}
	}
}
