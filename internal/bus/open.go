package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject names.
const (
	StreamName    = "VIGIL_EVENTS"
	SubjectPrefix = "vigil.events."
)

// Header names set on every message.
const (
	HeaderAgent = "Vigil-Agent" // the agent id passed to Publish
)

// MaxPayload is the largest message the embedded server accepts. An external
// server must allow at least as much (max_payload) for ingest's batches.
const MaxPayload = 8 << 20

// Defaults for Options.
const (
	DefaultStreamMaxBytes = 8 << 30
	DefaultAckWait        = 30 * time.Second
	// DefaultMaxAckPending bounds the batches handed out and not yet acked,
	// per durable, across all its consumers.
	DefaultMaxAckPending = 1024
)

// Errors callers branch on.
var (
	// ErrFull is returned by Publish when the stream holds StreamMaxBytes.
	// It has a method StreamFull() bool returning true, so a caller can
	// recognise it without importing bus.
	ErrFull error = &kindError{"bus: event stream is full", true, false}
	// ErrTooLarge is returned by Publish for a message over the server's
	// maximum payload; its method TooLarge() bool returns true.
	ErrTooLarge error = &kindError{"bus: message too large", false, true}
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("bus: closed")
)

type kindError struct {
	msg            string
	full, tooLarge bool
}

func (e *kindError) Error() string    { return e.msg }
func (e *kindError) StreamFull() bool { return e.full }
func (e *kindError) TooLarge() bool   { return e.tooLarge }

// Options configure Open. Exactly one of DataDir and URL is set.
type Options struct {
	// DataDir starts an embedded JetStream server storing under
	// DataDir/jetstream. It listens on no port: the connection is in-process.
	DataDir string
	// URL connects to an external NATS JetStream server or cluster, e.g.
	// "nats://a:4222,nats://b:4222,nats://c:4222".
	URL string
	// NATSOptions are extra connection options for URL (credentials, TLS).
	NATSOptions []nats.Option
	// Replicas of the stream: 0 means 1 embedded and 3 external.
	Replicas int
	// StreamMaxBytes bounds the stream; 0 means DefaultStreamMaxBytes.
	StreamMaxBytes int64
	// Durables are the consumers that must see every batch (e.g. "detect",
	// "store"); Open creates them. See the package documentation.
	Durables []string
	// AckWait and MaxAckPending configure durables; 0 means the defaults.
	AckWait       time.Duration
	MaxAckPending int
	// Logger receives the embedded server's log and the bus's own; nil
	// discards both.
	Logger *slog.Logger
}

// Bus is a connection to the event stream. Open it, Close it.
type Bus struct {
	opts Options
	srv  *server.Server // nil when external
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger
}

// Open starts the embedded server or connects to the external one, then
// creates or updates the stream and the durables.
func Open(ctx context.Context, opts Options) (*Bus, error) {
	if (opts.DataDir == "") == (opts.URL == "") {
		return nil, errors.New("bus: set exactly one of DataDir and URL")
	}
	if opts.StreamMaxBytes <= 0 {
		opts.StreamMaxBytes = DefaultStreamMaxBytes
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.MaxAckPending <= 0 {
		opts.MaxAckPending = DefaultMaxAckPending
	}
	if opts.Replicas == 0 {
		opts.Replicas = 3
		if opts.DataDir != "" {
			opts.Replicas = 1
		}
	}
	if opts.DataDir != "" && opts.Replicas != 1 {
		return nil, fmt.Errorf("bus: the embedded server has one replica, not %d", opts.Replicas)
	}
	if len(opts.Durables) == 0 {
		return nil, errors.New("bus: Options.Durables is empty: the interest-retention stream would drop every batch published before a consumer exists")
	}
	for _, d := range opts.Durables {
		if !validToken(d) {
			return nil, fmt.Errorf("bus: durable name %q: use letters, digits, '-' and '_'", d)
		}
	}
	b := &Bus{opts: opts, log: opts.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if opts.DataDir != "" {
		err = b.startEmbedded()
	} else {
		b.nc, err = nats.Connect(opts.URL, append([]nats.Option{
			nats.Name("vigil"),
			nats.MaxReconnects(-1),
		}, opts.NATSOptions...)...)
		if err != nil {
			err = fmt.Errorf("bus: connect %s: %w", opts.URL, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := b.setup(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) startEmbedded() error {
	dir := filepath.Join(b.opts.DataDir, "jetstream")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	sopts := &server.Options{
		ServerName: "vigil-embedded",
		DontListen: true, // clients connect in-process only
		JetStream:  true,
		StoreDir:   dir,
		// Every write of the file store is fsynced before the publish is
		// acknowledged: the config file's sync_interval: always.
		SyncAlways: true,
		// The file store needs room beyond the stream for its metadata.
		JetStreamMaxStore:  b.opts.StreamMaxBytes + 256<<20,
		JetStreamMaxMemory: 64 << 20,
		MaxPayload:         MaxPayload,
		NoSigs:             true,
		NoLog:              b.opts.Logger == nil,
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("bus: embedded server: %w", err)
	}
	if b.opts.Logger != nil {
		srv.SetLoggerV2(serverLog{b.opts.Logger.With("component", "nats")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("bus: embedded server did not start within 30s")
	}
	b.srv = srv
	b.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("vigil"), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return fmt.Errorf("bus: connect to the embedded server: %w", err)
	}
	return nil
}

func (b *Bus) setup(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	b.js = js
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Vigil event batches, one message per agent batch",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.InterestPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    b.opts.StreamMaxBytes,
		MaxMsgSize:  MaxPayload,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("bus: create stream %s: %w", StreamName, err)
	}
	for _, d := range b.opts.Durables {
		if _, err := b.consumer(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bus) consumer(ctx context.Context, durable string) (jetstream.Consumer, error) {
	c, err := b.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "Vigil event consumer " + durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.opts.AckWait,
		MaxDeliver:    -1, // never give up on a batch: the handler's bug must be fixed, not the data lost
		MaxAckPending: b.opts.MaxAckPending,
		Replicas:      b.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: durable %s: %w", durable, err)
	}
	return c, nil
}

// Close drains the connection (in-flight publishes and acks complete) and
// stops the embedded server. It is safe to call more than once.
func (b *Bus) Close() {
	if b.nc != nil && !b.nc.IsClosed() {
		closed := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
		} else {
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				b.nc.Close()
			}
		}
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

// subject returns the subject for agentID: vigil.events.<agentID> when the id
// is a safe subject token, otherwise vigil.events.x<hex of the id>.
func subject(agentID string) string {
	if validToken(agentID) {
		return SubjectPrefix + agentID
	}
	return fmt.Sprintf("%sx%x", SubjectPrefix, agentID)
}

func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// serverLog adapts slog to the nats-server logger.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(f string, v ...any) { s.l.Info(trim(f, v)) }
func (s serverLog) Warnf(f string, v ...any)   { s.l.Warn(trim(f, v)) }
func (s serverLog) Fatalf(f string, v ...any)  { s.l.Error(trim(f, v)) }
func (s serverLog) Errorf(f string, v ...any)  { s.l.Error(trim(f, v)) }
func (s serverLog) Debugf(f string, v ...any)  { s.l.Debug(trim(f, v)) }
func (s serverLog) Tracef(f string, v ...any)  { s.l.Debug(trim(f, v)) }

func trim(f string, v []any) string { return strings.TrimSpace(fmt.Sprintf(f, v...)) }
