// Package gateway assembles a running credsync from a loaded config: the store, the engine, the
// API and the HTTP server with its timeouts and graceful shutdown.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/store/memstore"
)

// Options tune a gateway beyond its config file.
type Options struct {
	// ShutdownGrace is how long running rotations may go on after a stop signal (default 30s).
	ShutdownGrace time.Duration
}

// Gateway is credsync serving its API.
type Gateway struct {
	Engine *core.Engine
	API    *api.Server
	log    *zap.Logger
	opts   Options
}

// New builds the gateway for cfg.
func New(cfg *config.Config, log *zap.Logger, opts Options) (*Gateway, error) {
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	var store core.Store
	switch cfg.File.Store.Driver {
	case "memory":
		store = memstore.New()
	default:
		return nil, fmt.Errorf("store driver %q is not available", cfg.File.Store.Driver)
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Platforms: cfg.Platforms, Sources: cfg.Sources, Store: store, Logger: log.Named("engine"),
		Deadline: cfg.File.Server.RotationDeadline,
	})
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	tokens := make([]api.Token, len(cfg.File.Server.APITokens))
	for i, t := range cfg.File.Server.APITokens {
		tokens[i] = api.Token{Name: t.Name, Token: t.Token}
	}
	return &Gateway{Engine: eng, API: api.New(eng, tokens, log.Named("api")), log: log, opts: opts}, nil
}

// Serve answers on l until ctx ends, then stops accepting requests, lets running rotations finish
// within the grace period, and returns.
func (g *Gateway) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           g.API.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      api.MaxWait + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	g.log.Info("gateway listening", zap.String("addr", l.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	g.log.Info("stopping: no new requests; waiting for running rotations", zap.Duration("grace", g.opts.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), g.opts.ShutdownGrace)
	defer cancel()
	herr := srv.Shutdown(sctx)
	eerr := g.Engine.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err := errors.Join(herr, eerr); err != nil {
		return err
	}
	g.log.Info("stopped")
	return nil
}
