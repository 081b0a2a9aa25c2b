// Package syslogd receives syslog from agentless sources (network devices,
// servers without an agent) over UDP and TCP, RFC 3164 and RFC 5424, parses
// each line with the same parser offline hunting uses (hunt/syslog), and
// hands batches to ingest like an agent's.
//
// Each sending address is one source, named "syslog:<ip>". Its events are
// numbered from 1 within a "boot epoch" that is the listener's start time,
// so (source, epoch, sequence) stays unique across restarts and the event
// store's exactly-once rule applies unchanged. UDP gives no delivery
// guarantee; TCP lines are acknowledged by nothing but the connection, as
// syslog over TCP (RFC 6587) defines: both are documented limits of syslog,
// not of Vigil.
//
// Only cmd/vigil imports syslogd.
package syslogd

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/syslog"
)

// Sink takes one batch of a source's events, numbered from firstSeq.
type Sink func(ctx context.Context, source string, epoch, firstSeq uint64, evs []*event.Event) error

// Options configure a Server.
type Options struct {
	UDP, TCP     string // listen addresses; empty disables
	Sink         Sink
	MaxBatch     int           // default 1,000 lines
	FlushEvery   time.Duration // default 200 ms
	MaxLineBytes int           // default 64 KiB
	Logger       *slog.Logger
}

// Server is a running syslog receiver.
type Server struct {
	opts    Options
	epoch   uint64
	mu      sync.Mutex
	sources map[string]*source
	udp     net.PacketConn
	tcp     net.Listener
	wg      sync.WaitGroup
	dropped atomic.Uint64
}

type source struct {
	name    string
	nextSeq uint64
	pending []*event.Event
}

// Listen starts the listeners; Serve runs them.
func Listen(opts Options) (*Server, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 200 * time.Millisecond
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = syslog.DefaultMaxLine
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, epoch: uint64(time.Now().UnixNano()), sources: map[string]*source{}}
	var err error
	if opts.UDP != "" {
		if s.udp, err = net.ListenPacket("udp", opts.UDP); err != nil {
			return nil, err
		}
	}
	if opts.TCP != "" {
		if s.tcp, err = net.Listen("tcp", opts.TCP); err != nil {
			if s.udp != nil {
				s.udp.Close()
			}
			return nil, err
		}
	}
	return s, nil
}

// Addrs returns the bound UDP and TCP addresses (nil when disabled).
func (s *Server) Addrs() (udp, tcp net.Addr) {
	if s.udp != nil {
		udp = s.udp.LocalAddr()
	}
	if s.tcp != nil {
		tcp = s.tcp.Addr()
	}
	return
}

// Dropped counts lines lost because the sink failed.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Serve receives until ctx ends, then flushes what is pending.
func (s *Server) Serve(ctx context.Context) {
	if s.udp != nil {
		s.wg.Add(1)
		go s.serveUDP(ctx)
	}
	if s.tcp != nil {
		s.wg.Add(1)
		go s.serveTCP(ctx)
	}
	t := time.NewTicker(s.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if s.udp != nil {
				s.udp.Close()
			}
			if s.tcp != nil {
				s.tcp.Close()
			}
			s.wg.Wait()
			s.flushAll(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.flushAll(ctx)
		}
	}
}

func (s *Server) serveUDP(ctx context.Context) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Warn("syslog udp", "err", err)
			}
			return
		}
		s.add(ctx, hostOf(addr), buf[:n])
	}
}

func (s *Server) serveTCP(ctx context.Context) {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			go func() { <-ctx.Done(); c.Close() }()
			br := bufio.NewReaderSize(c, s.opts.MaxLineBytes)
			src := hostOf(c.RemoteAddr())
			for {
				line, err := br.ReadSlice('\n')
				if len(line) > 0 {
					s.add(ctx, src, line)
				}
				if errors.Is(err, bufio.ErrBufferFull) {
					// Over-long line: keep its start, skip the rest.
					for errors.Is(err, bufio.ErrBufferFull) {
						_, err = br.ReadSlice('\n')
					}
				}
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					return
				}
			}
		}()
	}
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func (s *Server) add(ctx context.Context, host string, line []byte) {
	ev := &event.Event{}
	if err := syslog.Parse(line, syslog.Options{}, ev); err != nil && !errors.Is(err, syslog.ErrMalformed) {
		return // empty line
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	s.mu.Lock()
	src, ok := s.sources[host]
	if !ok {
		src = &source{name: "syslog:" + host, nextSeq: 1}
		s.sources[host] = src
	}
	src.pending = append(src.pending, ev)
	full := len(src.pending) >= s.opts.MaxBatch
	s.mu.Unlock()
	if full {
		s.flush(ctx, host)
	}
}

func (s *Server) flushAll(ctx context.Context) {
	s.mu.Lock()
	hosts := make([]string, 0, len(s.sources))
	for h, src := range s.sources {
		if len(src.pending) > 0 {
			hosts = append(hosts, h)
		}
	}
	s.mu.Unlock()
	for _, h := range hosts {
		s.flush(ctx, h)
	}
}

func (s *Server) flush(ctx context.Context, host string) {
	s.mu.Lock()
	src := s.sources[host]
	evs := src.pending
	first := src.nextSeq
	src.pending = nil
	src.nextSeq += uint64(len(evs))
	s.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	if err := s.opts.Sink(ctx, src.name, s.epoch, first, evs); err != nil {
		s.dropped.Add(uint64(len(evs)))
		s.opts.Logger.Warn("syslog batch not accepted", "source", src.name, "events", len(evs), "err", err)
	}
}
