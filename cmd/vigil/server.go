package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/bus"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/hygiene"
	"github.com/vigil-edr/vigil/internal/ingest"
	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/pipeline"
	"github.com/vigil-edr/vigil/internal/pki"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/rulepack"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
	"github.com/vigil-edr/vigil/internal/syslogd"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/vuln"
	"github.com/vigil-edr/vigil/internal/web"
	"github.com/vigil-edr/vigil/internal/wire"
)

// serverConfig is everything `vigil server` takes from flags.
type serverConfig struct {
	Data       string
	Listen     string
	NATS       string
	Rules      []string
	Hosts      []string
	SyslogUDP  string
	SyslogTCP  string
	Workers    int
	Retention  time.Duration
	MaxBytes   int64
	Logger     *slog.Logger
	AdminToken io.Writer // where the first-start admin token is printed
	// OnAlert, when set, is told of every alert occurrence recorded (for
	// benchmarks measuring event → alert latency).
	OnAlert func(f alert.Finding, created bool, at time.Time)
	// NotifyAllow opens otherwise blocked outbound addresses (CIDRs, IPs,
	// host names) to notification channels: on-premise chat and mail servers.
	NotifyAllow []string
	// ActionApproval lists the response action types that need a second
	// approver.
	ActionApproval []string
	// ConsoleListen, if set, is a second HTTPS address serving the console
	// and the API to browsers with the certificate in ConsoleCert and
	// ConsoleKey (PEM files, re-read when they change), or the data
	// directory's server certificate when none is given.
	ConsoleListen, ConsoleCert, ConsoleKey string
}

func newServerCmd() *cobra.Command {
	cfg := serverConfig{}
	cmd := &cobra.Command{
		Use:   "server --data DIR [--listen ADDR]",
		Short: "Run the Vigil server: agent enrolment and ingest, detection, alerts, event store, API",
		Long: `Server runs Vigil's server on this machine. With the defaults everything is
embedded: a NATS JetStream server (file store under DIR/bus, every acknowledged
batch synced to disk) and SQLite (WAL) under DIR. With --nats the same code runs
against an existing JetStream cluster.

The first start creates DIR, a certificate authority and the server's TLS
certificate under DIR/pki, and an admin API token that is printed once.`,
		Example: `  vigil server --data /var/lib/vigil --listen :8443 --rules /etc/vigil/rules
  vigil token create --data /var/lib/vigil --uses 10 --ttl 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg.AdminToken = cmd.OutOrStdout()
			s, err := startServer(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			return s.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Data, "data", "", "data directory (created on first start)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "HTTPS address for agents and the API")
	f.StringVar(&cfg.NATS, "nats", "", "external NATS JetStream URL(s), comma-separated (default: embedded)")
	f.StringArrayVar(&cfg.Rules, "rules", nil, "Sigma rule file or directory (repeatable; default: ./rules if present)")
	f.StringArrayVar(&cfg.Hosts, "host", nil, "extra DNS name or IP for the server certificate (repeatable)")
	f.StringVar(&cfg.SyslogUDP, "syslog-udp", "", "receive syslog over UDP on this address (e.g. :514)")
	f.StringVar(&cfg.SyslogTCP, "syslog-tcp", "", "receive syslog over TCP on this address")
	f.IntVar(&cfg.Workers, "workers", 2, "detection workers")
	f.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "keep events this long")
	f.Int64Var(&cfg.MaxBytes, "max-event-bytes", 20<<30, "keep at most this many bytes of events")
	f.StringArrayVar(&cfg.NotifyAllow, "notify-allow", nil, "let notifications reach this private CIDR, IP or host name (repeatable; on-premise chat or mail servers)")
	f.StringSliceVar(&cfg.ActionApproval, "action-approval", nil, "response action types that need a second approver (comma-separated: kill, quarantine, restore, block, unblock, isolate, release, collect, query)")
	f.StringVar(&cfg.ConsoleListen, "console-listen", "", "also serve the console and API to browsers on this HTTPS address")
	f.StringVar(&cfg.ConsoleCert, "console-cert", "", "PEM certificate (chain) for --console-listen, e.g. from your CA or ACME client (default: the data directory's)")
	f.StringVar(&cfg.ConsoleKey, "console-key", "", "PEM private key for --console-cert")
	cmd.MarkFlagRequired("data")
	return cmd
}

// Server is a running Vigil server; Close stops it in the reverse order of
// the data flow.
type Server struct {
	cfg      serverConfig
	cancel   context.CancelFunc
	done     chan struct{}
	http     *http.Server
	addr     net.Addr
	console  *http.Server // --console-listen, if set
	conAddr  net.Addr
	conDone  chan struct{}
	db       *sqlite.DB
	bus      *bus.Bus
	auth     *pki.Authority
	rules    *ruleset.Manager
	alerts   *alert.Processor
	hygiene  *hygiene.Service
	notify   *notify.Notifier
	ingest   *ingest.Ingester
	workers  []*pipeline.Worker
	syslog   *syslogd.Server
	api      atomic.Pointer[web.Server] // set after the workers start; read by onAlert
	respond  *respond.Service
	bg       sync.WaitGroup // workers, syslog, retention: waited for before the bus and database close
	closeErr error
}

// Addr is the address the HTTPS listener is bound to.
func (s *Server) Addr() net.Addr { return s.addr }

// startServer builds the server in data-flow order: storage and keys, the
// bus, transport → ingest → bus → detection workers → alerts, and the API in
// front. It returns when the listener is accepting.
func startServer(parent context.Context, cfg serverConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkConsoleFlags(cfg); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if len(cfg.Rules) == 0 {
		if _, err := os.Stat("rules"); err == nil {
			cfg.Rules = []string{"rules"}
		}
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	// Installed rule packs (vigil rules update) that are enabled.
	packs, err := rulepack.EnabledPaths(cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("rule packs: %w", err)
	}
	cfg.Rules = append(cfg.Rules, packs...)
	ctx, cancel := context.WithCancel(parent)
	s := &Server{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		cancel()
		s.bg.Wait()
		s.closeAll()
		return nil, err
	}
	log := cfg.Logger

	// Keys and storage.
	host, _, _ := net.SplitHostPort(cfg.Listen)
	hosts := append([]string{host}, cfg.Hosts...)
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if s.auth, err = pki.LoadOrCreate(filepath.Join(cfg.Data, "pki"), hosts); err != nil {
		return fail(fmt.Errorf("certificates: %w", err))
	}
	if s.db, err = sqlite.Open(ctx, filepath.Join(cfg.Data, "vigil.db"), sqlite.Options{}); err != nil {
		return fail(fmt.Errorf("database: %w", err))
	}
	if err := ensureAdminUser(ctx, s.db, cfg.Listen, cfg.AdminToken); err != nil {
		return fail(err)
	}
	if err := ensureAdminToken(ctx, s.db, cfg.AdminToken); err != nil {
		return fail(err)
	}

	// The bus: embedded unless a cluster URL is given.
	if s.bus, err = bus.Open(ctx, bus.Options{DataDir: filepath.Join(cfg.Data, "bus"), URL: cfg.NATS, Durables: []string{pipeline.DefaultDurable}, Logger: log}); err != nil {
		return fail(fmt.Errorf("bus: %w", err))
	}

	// Rules and alerts.
	s.rules = ruleset.New(ruleset.Options{Paths: cfg.Rules, Store: s.db})
	if err := s.rules.Load(ctx); err != nil {
		return fail(fmt.Errorf("rules: %w", err))
	}
	set := s.rules.Current()
	log.Info("rules loaded", "rules", len(set.Engine.Rules()), "correlations", len(set.Engine.Correlations()), "rejected", len(set.Rejected))
	if len(cfg.Rules) > 0 {
		go s.rules.Watch(ctx, 5*time.Second, func(err error) { log.Warn("rule reload", "err", err) })
	}
	s.alerts = alert.NewProcessor(alert.Options{Store: s.db})
	// alerts → cases (incidents); every case change is also written to the audit log.
	caseSvc := cases.NewService(cases.Options{Store: s.db, Alerts: s.db, Events: s.db, Audit: audit.New(s.db, nil)})

	// alerts → notifications: the store's alert change feed is the outbox.
	if s.notify, err = notify.New(notify.Options{Store: s.db, Allow: cfg.NotifyAllow, Logger: log}); err != nil {
		return fail(fmt.Errorf("notifications: %w", err))
	}
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.notify.Run(ctx) }()

	// Response actions: authorised, signed with the server's action key,
	// queued in the store, handed to agents by transport, audited.
	actionKey, err := respond.LoadOrCreateKey(filepath.Join(cfg.Data, "pki", "actions.key"))
	if err != nil {
		return fail(err)
	}
	collected, err := respond.OpenFileStore(filepath.Join(cfg.Data, "collected"))
	if err != nil {
		return fail(err)
	}
	s.respond, err = respond.New(respond.Options{Store: s.db, Audit: audit.New(s.db, nil), Agents: s.db, Key: actionKey,
		Files: collected, Approval: cfg.ActionApproval, Logger: log,
		// Playbooks act as their creator, with the role the creator holds
		// when they trigger.
		Playbooks: s.db, RoleOf: currentRole{s.db}.of})
	if err != nil {
		return fail(err)
	}
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.respond.RunPlaybooks(ctx) }()

	// transport → ingest → bus.
	s.ingest = ingest.New(ingest.Options{Bus: s.bus})
	tr, err := transport.NewServer(transport.ServerOptions{Store: s.db, Authority: s.auth, Ingester: s.ingest, Logger: log,
		ActionKey: s.respond.PublicKey(), Actions: s.respond})
	if err != nil {
		return fail(err)
	}

	// inventory → vulnerability findings: a host is re-evaluated as soon as
	// a worker applies its snapshot, and stale hosts are looked for every
	// minute (an import by `vigil vulndb import` in another process).
	vulnWake := make(chan struct{}, 1)
	vulns := &vuln.Evaluator{Store: s.db, Inventories: s.db, Logger: log}
	s.bg.Add(1)
	go func() { defer s.bg.Done(); vulns.Run(ctx, vulnWake, time.Minute) }()

	// bus → detection workers → alerts.
	src := busSource{s.bus}
	// Stored batches feed the host inventories and the configuration
	// assessment results (both idempotent: a redelivered batch is harmless).
	inv, scaRec := &inventory.Recorder{Store: s.db, Logger: log, Applied: func(string) {
		select {
		case vulnWake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}}, &sca.Recorder{Store: s.db, Logger: log}
	afterStore := func(ctx context.Context, evs []eventstore.Stored) error {
		if err := inv.AfterStore(ctx, evs); err != nil {
			return err
		}
		return scaRec.AfterStore(ctx, evs)
	}
	for i := 0; i < cfg.Workers; i++ {
		w := pipeline.New(pipeline.Options{
			Source: src, Decode: decodeBatch, Events: s.db, Alerts: s.alerts, Rules: s.rules,
			Hosts: agentHosts{s.db}, Logger: log, OnAlert: s.onAlert,
			AfterStore: afterStore,
		})
		s.workers = append(s.workers, w)
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("detection worker stopped", "err", err)
			}
		}()
	}

	// Agentless syslog enters through ingest like an agent's batch.
	if cfg.SyslogUDP != "" || cfg.SyslogTCP != "" {
		s.syslog, err = syslogd.Listen(syslogd.Options{UDP: cfg.SyslogUDP, TCP: cfg.SyslogTCP, Sink: s.syslogSink, Logger: log})
		if err != nil {
			return fail(fmt.Errorf("syslog: %w", err))
		}
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.syslog.Serve(ctx) }()
	}

	// Retention.
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.expire(ctx) }()

	// Hygiene scores read the stores above; their history gets a point when
	// a score's deductions change (checked every 5 min, at most one an hour).
	hyg := hygiene.NewService(hygiene.Options{Hosts: s.db, SCA: s.db, Vulns: s.db, Alerts: s.db, Cases: s.db, Store: s.db, Logger: log})
	s.bg.Add(1)
	go func() { defer s.bg.Done(); hyg.Run(ctx, 5*time.Minute) }()
	s.hygiene = hyg

	// The API and the agent endpoints share one TLS listener.
	reg := prometheus.NewRegistry()
	s.registerMetrics(reg)
	login, err := authz.NewAuthenticator(authz.LoginOptions{Users: s.db})
	if err != nil {
		return fail(err)
	}
	api := web.New(web.Options{
		Tokens: s.db, Alerts: alertsAPI{s.db, s.alerts}, Events: s.db, Hosts: s.db, Enrollment: s.db,
		Rules: s.rules, Notify: s.notify, Metrics: reg, Ready: s.ready, AgentHandler: tr.Handler(), Logger: log,
		Cases:     caseSvc,
		Inventory: s.db,
		SCA:       s.db,
		Overview:  s.db,
		Vulns:     s.db,
		Hygiene:   hyg,
		// The console: users, sessions and sign-in; every state change goes to the audit log.
		Users: s.db, Sessions: s.db, Login: login, Audit: audit.New(s.db, nil),
		Actions: s.respond, Playbooks: s.respond,
	})
	s.api.Store(api)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(err)
	}
	s.addr = ln.Addr()
	tlsCfg := s.auth.ServerTLSConfig()
	s.http = &http.Server{
		Handler:           api.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(tls.NewListener(ln, tlsCfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("https listener", "err", err)
		}
	}()
	if cfg.ConsoleListen != "" {
		if err := s.serveConsole(api.Handler()); err != nil {
			return fail(err)
		}
	}
	log.Info("vigil server started", "listen", s.addr.String(), "data", cfg.Data, "ca_fingerprint", s.auth.CAFingerprint())
	return s, nil
}

// checkConsoleFlags validates the console listener's settings.
func checkConsoleFlags(cfg serverConfig) error {
	switch {
	case (cfg.ConsoleCert == "") != (cfg.ConsoleKey == ""):
		return errors.New("--console-cert and --console-key go together")
	case cfg.ConsoleCert != "" && cfg.ConsoleListen == "":
		return errors.New("--console-cert needs --console-listen (agents keep the data directory's certificate on --listen)")
	}
	if cfg.ConsoleCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.ConsoleCert, cfg.ConsoleKey); err != nil {
			return fmt.Errorf("console certificate: %w", err)
		}
	}
	return nil
}

// serveConsole starts the browsers' listener. Agents pin the data
// directory's CA on --listen; a certificate from another CA (an
// organisation's, or a public one) can only be offered on its own address.
func (s *Server) serveConsole(h http.Handler) error {
	cfg := s.cfg
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return s.auth.ServerTLSConfig().GetCertificate(nil)
	}
	if cfg.ConsoleCert != "" {
		get = (&certFiles{cert: cfg.ConsoleCert, key: cfg.ConsoleKey}).get
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}, GetCertificate: get}
	ln, err := net.Listen("tcp", cfg.ConsoleListen)
	if err != nil {
		return fmt.Errorf("console listener: %w", err)
	}
	s.conAddr = ln.Addr()
	s.conDone = make(chan struct{})
	s.console = &http.Server{
		Handler: h, TLSConfig: tlsCfg,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.conDone)
		if err := s.console.Serve(tls.NewListener(ln, tlsCfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("console https listener", "err", err)
		}
	}()
	cfg.Logger.Info("console listening", "listen", s.conAddr.String(), "certificate", cmp.Or(cfg.ConsoleCert, "data directory"))
	return nil
}

// certFiles serves a certificate from PEM files, re-read when either
// file's modification time changes (a renewal), keeping the last good pair
// if a new one does not load.
type certFiles struct {
	cert, key string
	mu        sync.Mutex
	loaded    *tls.Certificate
	stamp     string
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp := ""
	for _, p := range []string{c.cert, c.key} {
		if fi, err := os.Stat(p); err == nil {
			stamp += fi.ModTime().String() + "|"
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded != nil && stamp == c.stamp {
		return c.loaded, nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.loaded != nil {
			return c.loaded, nil
		}
		return nil, fmt.Errorf("console certificate: %w", err)
	}
	c.loaded, c.stamp = &pair, stamp
	return c.loaded, nil
}

// onAlert wakes the notifier as soon as a detection worker opened a new
// alert (it polls otherwise; an occurrence grouped into an open alert
// writes no change-feed row, so there is nothing to route), wakes the
// console's live alert streams (counts change too) and tells the benchmark
// hook, if any.
func (s *Server) onAlert(f alert.Finding, created bool, at time.Time) {
	if created {
		s.notify.Wake()
		s.respond.OnAlert(f) // playbooks act on new alerts; never blocks
	}
	if api := s.api.Load(); api != nil {
		api.AlertsChanged() // live alert streams in the console
	}
	if s.cfg.OnAlert != nil {
		s.cfg.OnAlert(f, created, at)
	}
}

// Close stops the server: the listener first (no new batches), then the
// workers and the bus, the database last.
func (s *Server) Close() error {
	if s.console != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.console.Shutdown(ctx)
		cancel()
		<-s.conDone
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.http.Shutdown(ctx)
		cancel()
		<-s.done
	}
	s.cancel()
	s.bg.Wait()
	s.closeAll()
	return s.closeErr
}

func (s *Server) closeAll() {
	if s.bus != nil {
		s.bus.Close()
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.closeErr = err
		}
	}
}

func (s *Server) ready() error {
	if _, _, err := s.db.Stats(context.Background()); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if _, err := s.bus.Lag(context.Background()); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

func (s *Server) expire(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		n, err := s.db.Expire(ctx, eventstore.Retention{MaxAge: s.cfg.Retention, MaxBytes: s.cfg.MaxBytes}, time.Now())
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("retention", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Info("retention", "deleted_events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syslogSink encodes a syslog batch in the agent wire format and passes it
// through ingest, so limits, rate and the bus apply the same way.
func (s *Server) syslogSink(ctx context.Context, source string, epoch, first uint64, evs []*event.Event) error {
	b := &wire.Batch{Version: wire.Version, BootEpoch: epoch}
	for i, ev := range evs {
		b.Events = append(b.Events, wire.FromEvent(first+uint64(i), ev))
	}
	body, err := wire.Encode(b, "zstd")
	if err != nil {
		return err
	}
	status, resp, _ := s.ingest.IngestBatch(ctx, source, body, "zstd")
	if status != http.StatusOK {
		return fmt.Errorf("ingest answered %d: %s", status, resp)
	}
	return nil
}

// ensureAdminToken creates the first admin API token on first start and
// prints it once; only its hash is stored.
func ensureAdminToken(ctx context.Context, db *sqlite.DB, out io.Writer) error {
	toks, err := db.ListTokens(ctx)
	if err != nil {
		return err
	}
	if len(toks) > 0 {
		return nil
	}
	secret := authz.NewSecret()
	t := authz.Token{ID: "admin-initial", Name: "initial admin token", Role: authz.RoleAdmin, Hash: authz.Hash(secret), CreatedAt: time.Now().UTC()}
	if err := db.CreateToken(ctx, t); err != nil {
		return err
	}
	if out != nil {
		fmt.Fprintf(out, "Initial admin API token (shown once, stored hashed):\n  %s\n", secret)
	}
	return nil
}

// currentRole resolves an actor of the audit log to the role it holds now:
// "token:NAME" (not revoked or expired) or "user:NAME".
type currentRole struct{ db *sqlite.DB }

func (c currentRole) of(ctx context.Context, actor string) (authz.Role, error) {
	kind, name, _ := strings.Cut(actor, ":")
	switch kind {
	case "token":
		toks, err := c.db.ListTokens(ctx)
		if err != nil {
			return "", err
		}
		// Token names need not be unique: a name that now belongs to more
		// than one valid token names no one.
		var roles []authz.Role
		for _, t := range toks {
			if (t.Name == name || t.ID == name) && !t.Revoked && (t.ExpiresAt.IsZero() || time.Now().Before(t.ExpiresAt)) {
				roles = append(roles, t.Role)
			}
		}
		switch len(roles) {
		case 0:
			return "", errors.New("no valid token of that name (revoked, expired or deleted)")
		case 1:
			return roles[0], nil
		}
		return "", errors.New("more than one valid token has that name")
	case "user":
		u, err := c.db.GetUser(ctx, name)
		if err != nil {
			return "", err
		}
		return u.Role, nil
	}
	return "", fmt.Errorf("actor %q is neither a token nor a user", actor)
}

// alertsAPI joins the alert store and the processor for the web API.
type alertsAPI struct {
	alert.Store
	*alert.Processor
}

// agentHosts names an agent's host from its enrolment record.
type agentHosts struct{ db *sqlite.DB }

func (h agentHosts) AgentHost(ctx context.Context, id string) (string, error) {
	if strings.HasPrefix(id, "syslog:") {
		return strings.TrimPrefix(id, "syslog:"), nil
	}
	a, err := h.db.GetAgent(ctx, id)
	if err != nil {
		return "", err
	}
	return a.Hostname, nil
}

// decodeBatch reads a bus message back into events; ingest validated it.
func decodeBatch(m pipeline.Message, fn func(epoch, seq uint64, ev *event.Event)) error {
	b, err := wire.Decode(m.Data, m.Encoding, wire.Limits{})
	if err != nil {
		return err
	}
	// The batch is dropped afterwards, so the events take its slices
	// instead of copies (what ToEvent makes).
	for i := range b.Events {
		e := &b.Events[i]
		fn(b.BootEpoch, e.Seq, &event.Event{Time: e.Time.UTC(), Product: e.Product, Services: e.Services,
			Categories: e.Categories, Record: e.Seq, Fields: e.Fields})
	}
	return nil
}

// busSource lets detection workers consume from the bus.
type busSource struct{ b *bus.Bus }

func (s busSource) Consume(ctx context.Context, durable string, max int, handle func(context.Context, []pipeline.Message) error) error {
	return s.b.Consume(ctx, durable, max, func(ctx context.Context, msgs []bus.Msg) error {
		out := make([]pipeline.Message, len(msgs))
		for i, m := range msgs {
			out[i] = pipeline.Message{AgentID: m.AgentID, Data: m.Data, Encoding: m.Headers[ingest.HeaderEncoding]}
		}
		return handle(ctx, out)
	})
}

// registerMetrics exposes the stages' counters to Prometheus.
func (s *Server) registerMetrics(reg prometheus.Registerer) {
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	sum := func(f func(pipeline.Stats) uint64) func() float64 {
		return func() float64 {
			var n uint64
			for _, w := range s.workers {
				n += f(w.Stats())
			}
			return float64(n)
		}
	}
	counter("vigil_events_stored_total", "Events taken from the bus and written to the event store (duplicates included).", sum(func(st pipeline.Stats) uint64 { return st.Events }))
	counter("vigil_events_duplicate_total", "Events already stored, dropped by (agent, boot epoch, sequence).", sum(func(st pipeline.Stats) uint64 { return st.Duplicates }))
	counter("vigil_events_scanned_total", "Events evaluated by the detection rules.", sum(func(st pipeline.Stats) uint64 { return st.Scanned }))
	counter("vigil_rule_matches_total", "Rule matches, before grouping and suppression.", sum(func(st pipeline.Stats) uint64 { return st.Matches }))
	counter("vigil_correlation_hits_total", "Correlation rule hits.", sum(func(st pipeline.Stats) uint64 { return st.Correlations }))
	counter("vigil_playbook_alerts_dropped_total", "Alert occurrences the response playbooks never saw (their queue was full).",
		func() float64 { return float64(s.respond.PlaybookDrops()) })
	counter("vigil_alerts_created_total", "New alerts.", func() float64 { c, _, _ := s.alerts.Counts(); return float64(c) })
	counter("vigil_alerts_grouped_total", "Findings grouped into an open alert.", func() float64 { _, g, _ := s.alerts.Counts(); return float64(g) })
	counter("vigil_alerts_suppressed_total", "Findings hidden by a suppression.", func() float64 { _, _, x := s.alerts.Counts(); return float64(x) })
	nstat := func(f func(notify.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.notify.Stats())) }
	}
	counter("vigil_notify_sent_total", "Notifications delivered.", nstat(func(st notify.Stats) uint64 { return st.Sent }))
	counter("vigil_notify_retried_total", "Notification attempts that failed and will be retried.", nstat(func(st notify.Stats) uint64 { return st.Retried }))
	counter("vigil_notify_failed_total", "Notifications given up (permanent error or too many attempts).", nstat(func(st notify.Stats) uint64 { return st.Failed }))
	counter("vigil_notify_blocked_total", "Notification attempts refused by the outbound address policy.", nstat(func(st notify.Stats) uint64 { return st.Blocked }))
	counter("vigil_notify_escalations_total", "Escalations sent for alerts not acknowledged in time.", nstat(func(st notify.Stats) uint64 { return st.Escalated }))
	gauge("vigil_bus_pending_batches", "Batches stored on the bus and not yet acknowledged by detection (bus lag).", func() float64 {
		n, _ := s.bus.Lag(context.Background())
		return float64(n)
	})
	gauge("vigil_rules_loaded", "Detection rules in the live rule set.", func() float64 { return float64(len(s.rules.Current().Engine.Rules())) })
	gauge("vigil_rules_rejected", "Rule documents that failed to load.", func() float64 { return float64(len(s.rules.Current().Rejected)) })
	rc := prometheus.NewDesc("vigil_rule_evaluations_total", "Full evaluations per rule (after prefilters).", []string{"rule_id"}, nil)
	rt := prometheus.NewDesc("vigil_rule_eval_seconds_total", "Estimated evaluation time per rule.", []string{"rule_id"}, nil)
	reg.MustRegister(ruleCollector{s.rules, rc, rt})
	if s.syslog != nil {
		counter("vigil_syslog_dropped_total", "Syslog lines not accepted by ingest.", func() float64 { return float64(s.syslog.Dropped()) })
	}
}

// ruleCollector reports per-rule cost for the rules that were evaluated.
type ruleCollector struct {
	m            *ruleset.Manager
	count, costs *prometheus.Desc
}

func (c ruleCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.count; ch <- c.costs }

func (c ruleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.m.Current().Engine.Rules() {
		n, cost := r.Evaluations()
		if n == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.CounterValue, float64(n), r.Rule.ID)
		ch <- prometheus.MustNewConstMetric(c.costs, prometheus.CounterValue, cost.Seconds(), r.Rule.ID)
	}
}
