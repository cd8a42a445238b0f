// Package gateway assembles a running credsync from a loaded config: the store, the engine, the
// API and the HTTP server with its timeouts and graceful shutdown.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/metrics"
	"github.com/credsync/credsync/notify"
	"github.com/credsync/credsync/store/guard"
	"github.com/credsync/credsync/store/memstore"
	"github.com/credsync/credsync/store/sqlstore"
)

// Options tune a gateway beyond its config file.
type Options struct {
	// ShutdownGrace is how long running rotations may go on after a stop signal (default 30s).
	ShutdownGrace time.Duration
	// Keys says where the key that seals stored credentials comes from.
	Keys keyring.Source
	// AllowNoKey lets a durable store run without an encryption key: no credential is stored,
	// so a rotation interrupted by a restart ends with code interrupted and cannot be retried.
	AllowNoKey bool
	// DrainDelay is how long the gateway goes on serving, with /readyz answering 503, once ctx
	// ends and before it closes its listener (drain.go); 0: none.
	DrainDelay time.Duration
	// EndDrain, when closed, ends the drain delay early (serve closes it on a second signal).
	EndDrain <-chan struct{}
	// Generation, when > 0, tells this gateway from the earlier ones of the same process (a
	// config reload): it is appended to the replica's name ("host:8080#2"), so that leases the
	// gateway still finishing holds are never taken for this one's own.
	Generation int
}

// Gateway is credsync serving its API.
type Gateway struct {
	Engine  *core.Engine
	API     *api.Server
	Metrics *metrics.Metrics
	store   core.Store
	notify  *notify.Service
	log     *zap.Logger
	opts    Options
	server  config.Server
	tls     *tls.Config
}

// KeysFromEnv reads CREDSYNC_ENCRYPTION_KEY and CREDSYNC_ENCRYPTION_OLD_KEYS (comma-separated).
func KeysFromEnv(getenv func(string) string, keyFile string) keyring.Source {
	var older []string
	if o := getenv("CREDSYNC_ENCRYPTION_OLD_KEYS"); o != "" {
		older = strings.Split(o, ",")
	}
	return keyring.Source{Key: getenv("CREDSYNC_ENCRYPTION_KEY"), KeyFile: keyFile, OlderKey: older}
}

// New checks cfg as Preflight does, and refuses it with Preflight's error (a *multierror.Error)
// when it finds a problem; then it opens the store (applying its migrations) and builds the
// gateway. Any other error is one of opening the store or starting the engine.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) (*Gateway, error) {
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	p, err := preflight(cfg, opts)
	if err != nil {
		return nil, err
	}
	durable := cfg.File.Store.Driver != "memory"
	var sealer core.Sealer
	switch {
	case p.keys != nil:
		sealer = p.keys
	case !durable:
		// Nothing outlives the process: an ephemeral key keeps retries working meanwhile.
		if sealer, err = keyring.Generate(); err != nil {
			return nil, err
		}
	default: // preflight let a durable store run without a key: opts.AllowNoKey
		log.Warn("no encryption key: credentials are not stored, so rotations interrupted by a restart end failed (code interrupted) and cannot be retried")
	}
	store, err := openStore(ctx, cfg.File.Store, log)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	store = m.Store(store)
	owner := cfg.File.Server.ReplicaID
	if owner == "" {
		host, _ := os.Hostname()
		owner = host + ":" + cfg.File.Server.Listen
	}
	if opts.Generation > 0 {
		owner += "#" + strconv.Itoa(opts.Generation)
	}
	for _, s := range cfg.Sources {
		if s.Rotation != nil && len(s.Rotation.Users) == 1 {
			log.Warn("source rotates one user in place: between setting its new password and a target receiving it, that target cannot log in; give two users to alternate",
				zap.String("source", s.Name), zap.String("user", s.Rotation.Users[0]))
		}
	}
	for _, t := range append(append([]api.Token(nil), p.tokens...), p.statusTokens...) {
		if t.Scope.All() {
			continue
		}
		seen := false
		for _, s := range cfg.Sources {
			seen = seen || t.Scope.Covers(s.Name)
		}
		if !seen {
			log.Warn("token's sources match no configured source: it can see and do nothing; check its patterns",
				zap.String("token", t.Name), zap.Strings("sources", t.Scope.Sources))
		}
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Platforms: cfg.Platforms, Sources: cfg.Sources, Store: store, Logger: log.Named("engine"),
		Deadline: cfg.File.Server.RotationDeadline, Sealer: sealer, DurableStore: durable, Owner: owner,
		LeaseTTL: cfg.File.Store.LeaseTTL, Retention: cfg.File.Store.CredentialRetention, Observer: m,
		HistoryRetention: cfg.File.Store.HistoryRetention, AuditRetention: cfg.File.Store.AuditRetention,
		StoreTimeout: cfg.File.Store.Timeout, Notifications: cfg.Subscriptions(),
	})
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("start engine: %w", err)
	}
	notifier, err := notify.New(notify.Config{Notifications: cfg.Notifications, Store: store, Owner: owner,
		Logger: log.Named("notify"), Observer: m, StoreTimeout: cfg.File.Store.Timeout})
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("notifications: %w", err)
	}
	srv := cfg.File.Server
	a := api.New(eng, p.tokens, log.Named("api"), api.WithMetrics(m.Handler(), m),
		api.WithRateLimit(srv.RateLimit.RequestsPerSecond, srv.RateLimit.Burst), api.WithMaxBody(srv.MaxBodyBytes))
	if len(p.statusTokens) > 0 {
		a.SetStatusTokens(p.statusTokens)
	}
	return &Gateway{Engine: eng, API: a, Metrics: m, store: store, notify: notifier, log: log, opts: opts, server: srv, tls: p.tls}, nil
}

// apiTokens turns configured tokens (clear, or their SHA-256) into the API's.
func apiTokens(ts []config.APIToken) ([]api.Token, error) {
	out := make([]api.Token, len(ts))
	for i, t := range ts {
		out[i] = api.Token{Name: t.Name, Token: t.Token, Scope: api.Scope{Sources: t.Sources}}
		for _, a := range t.Actions {
			out[i].Scope.Actions = append(out[i].Scope.Actions, api.Action(a))
		}
		if err := out[i].Scope.Check(); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		if t.TokenSHA256 != "" {
			b, err := hex.DecodeString(t.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: token_sha256 is not a hex SHA-256: give the 64 hex digits sha256sum prints for the token", t.Name)
			}
			copy(out[i].SHA256[:], b)
		}
	}
	return out, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// openStore opens the configured store, every call of it bounded by store.timeout (store/guard).
func openStore(ctx context.Context, s config.Store, log *zap.Logger) (core.Store, error) {
	timeout := orDefault(s.Timeout, config.DefaultStoreTimeout)
	switch s.Driver {
	case "memory":
		return guard.New(memstore.New(), timeout, "the in-memory store", log), nil
	case "sqlite":
		st, err := sqlstore.OpenSQLite(ctx, s.DSN)
		if err != nil {
			return nil, fmt.Errorf("open SQLite store %s: %w", s.DSN, err)
		}
		warnIfShared(s.DSN, log)
		return guard.New(st, timeout, st.Where(), log), nil
	case "postgres":
		st, err := sqlstore.OpenPostgres(ctx, s.DSN)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return guard.New(st, timeout, st.Where(), log), nil
	default:
		return nil, fmt.Errorf("unknown store driver %q", s.Driver)
	}
}

// warnIfShared warns when an existing SQLite file (credsync creates new ones 0600, and SQLite
// gives its -wal and -shm files the same mode) may be read by others: it holds sealed credentials
// and the audit trail. Its mode is left as its owner set it.
func warnIfShared(dsn string, log *zap.Logger) {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the SQLite file may be read or written by other users: credsync leaves its mode as it is; chmod 600 it (and its -wal and -shm files)",
			zap.String("path", path), zap.String("mode", fi.Mode().Perm().String()))
	}
}

// Serve answers on l until ctx ends, then drains (see Options.DrainDelay), stops accepting
// requests, lets running rotations finish within the grace period, and returns.
func (g *Gateway) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           g.API.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       orDefault(g.server.ReadTimeout, 30*time.Second),
		WriteTimeout:      orDefault(g.server.WriteTimeout, api.MaxWait+30*time.Second),
		IdleTimeout:       orDefault(g.server.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         g.tls,
		ErrorLog:          zap.NewStdLog(g.log.Named("http")),
	}
	if g.tls != nil {
		l = tls.NewListener(l, g.tls)
	}
	defer func() { _ = g.store.Close() }()
	if err := g.Engine.Start(ctx); err != nil {
		_ = l.Close()
		return fmt.Errorf("resume unfinished rotations: %w", err)
	}
	// Deliveries run on goroutines of their own: a receiver never slows the engine.
	_ = g.notify.Start(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	g.log.Info("gateway listening", zap.String("addr", l.Addr().String()), zap.Bool("tls", g.tls != nil),
		zap.Bool("mutual_tls", g.tls != nil && g.tls.ClientAuth == tls.RequireAndVerifyClientCert))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	g.drain()
	g.log.Info("stopping: no new requests; waiting for running rotations", zap.Duration("grace", g.opts.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), g.opts.ShutdownGrace)
	defer cancel()
	herr := srv.Shutdown(sctx)
	eerr := g.Engine.Shutdown(sctx)
	// After the engine: events of the rotations that finished within the grace go out too.
	nerr := g.notify.Stop(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	// Running out of grace is not a failure: what is left is recorded and resumes at the next
	// start (or on another replica).
	for _, err := range []error{herr, eerr, nerr} {
		if errors.Is(err, context.DeadlineExceeded) {
			g.log.Warn("grace period over", zap.Error(err))
		} else if err != nil {
			return err
		}
	}
	g.log.Info("stopped")
	return nil
}
