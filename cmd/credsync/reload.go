package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
)

// server runs serve's gateways, one at a time: the one of the config read at start, then, at
// each SIGHUP whose config is accepted, one of the new config.
//
// A reload is atomic from the outside. The new config is loaded and checked exactly as at start
// (config errors, and everything gateway.New checks: keys, TLS files, the store) while the
// running gateway goes on; if anything is wrong, the running gateway stays and the log says
// why. Otherwise the new gateway starts serving on the same socket, and only then the old one
// stops asking for connections: it finishes the requests it has and its running rotations within
// --shutdown-grace, like a replica stopping; what it leaves unfinished the new one resumes, as
// one replica resumes another's (the store is shared and durable). So every request is served by
// one whole config, old or new, and the socket never closes.
//
// What a reload cannot change, it refuses: server.listen (the socket stays), the store (the
// rotations in flight live there), and a memory store (a second gateway would not see them).
type server struct {
	path       string
	noKey      bool
	grace      time.Duration
	drainDelay time.Duration
	endDrain   <-chan struct{} // closed at the second stop signal
	log        *zap.Logger
	generation int
}

// running is one gateway serving on its lane.
type running struct {
	gw       *gateway.Gateway
	cfg      *config.Config
	ln       *lane
	cancel   context.CancelFunc
	endDrain *signalOnce // ends this gateway's drain at once
	errc     chan error  // Serve's result
}

// signalOnce is a channel closed at most once, by whoever comes first.
type signalOnce struct {
	ch   chan struct{}
	once sync.Once
}

func newSignalOnce() *signalOnce { return &signalOnce{ch: make(chan struct{})} }

func (s *signalOnce) fire() { s.once.Do(func() { close(s.ch) }) }

// build makes the gateway of cfg.
func (sv *server) build(ctx context.Context, cfg *config.Config) (*gateway.Gateway, *signalOnce, error) {
	opts := gatewayOptions(cfg, sv.noKey)
	ed := newSignalOnce()
	opts.ShutdownGrace, opts.DrainDelay, opts.EndDrain, opts.Generation = sv.grace, sv.drainDelay, ed.ch, sv.generation
	gw, err := gateway.New(ctx, cfg, sv.log, opts)
	if err != nil {
		return nil, nil, err
	}
	return gw, ed, nil
}

// start serves gw on ln until ctx ends or the gateway is retired.
func (sv *server) start(ctx context.Context, gw *gateway.Gateway, ed *signalOnce, cfg *config.Config, ln *lane) *running {
	gctx, cancel := context.WithCancel(ctx)
	r := &running{gw: gw, cfg: cfg, ln: ln, cancel: cancel, endDrain: ed, errc: make(chan error, 1)}
	go func() {
		select {
		case <-sv.endDrain: // the second stop signal ends the drain of every gateway
			ed.fire()
		case <-gctx.Done():
		}
	}()
	go func() { r.errc <- gw.Serve(gctx, ln) }()
	return r
}

// run serves until ctx ends, reloading at each signal on reload.
func (sv *server) run(ctx context.Context, l net.Listener, cfg *config.Config, gw *gateway.Gateway, ed *signalOnce, reload <-chan struct{}) error {
	h := newHandoff(l)
	defer func() { _ = h.Close() }()
	var current atomic.Pointer[lane]
	// On a stop signal the socket closes with the last gateway's lane (new connections are
	// refused from then on); a retired gateway's lane closes alone.
	onClose := func(ln *lane) {
		if ctx.Err() != nil && current.Load() == ln {
			_ = h.Close()
		}
	}
	ln := h.lane(onClose)
	current.Store(ln)
	cur := sv.start(ctx, gw, ed, cfg, ln)
	var retired sync.WaitGroup
	defer retired.Wait()
	for {
		select {
		case err := <-cur.errc:
			return err
		case <-reload:
		}
		next, ed, err := sv.reload(ctx, cur.cfg)
		if err != nil {
			fields := []zap.Field{zap.String("config", sv.path)}
			var problems *multierror.Error
			if errors.As(err, &problems) {
				for i, p := range problems.Errors {
					fields = append(fields, zap.String(fmt.Sprintf("problem_%d", i+1), p.Error()))
				}
			} else {
				fields = append(fields, zap.Error(err))
			}
			sv.log.Error("SIGHUP: the config was not reloaded; still serving the one in force", fields...)
			continue
		}
		ln := h.lane(onClose)
		current.Store(ln)
		nxt := sv.start(ctx, next.gw, ed, next.cfg, ln)
		old := cur
		cur = nxt
		retired.Add(1)
		go func() {
			defer retired.Done()
			old.endDrain.fire() // a retired gateway does not drain: the new one answers /readyz
			old.cancel()
			if err := <-old.errc; err != nil {
				sv.log.Error("the gateway of the previous config stopped with an error", zap.Error(err))
			}
		}()
		sv.log.Info("config reloaded: the new config serves; the previous one finishes its requests and rotations",
			zap.String("config", sv.path), zap.Int("generation", sv.generation),
			zap.Int("platforms", len(next.cfg.Platforms)), zap.Int("sources", len(next.cfg.Sources)), zap.Duration("grace", sv.grace))
	}
}

// reload loads and checks the config file again and builds its gateway, or says why not.
func (sv *server) reload(ctx context.Context, in *config.Config) (*running, *signalOnce, error) {
	if ctx.Err() != nil {
		return nil, nil, errors.New("stopping: a reload now would not serve")
	}
	cfg, err := config.Load(sv.path)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid config: %w", err)
	}
	was, now := in.File, cfg.File
	switch {
	case now.Server.Listen != was.Server.Listen:
		return nil, nil, fmt.Errorf("server.listen changed from %s to %s: a reload keeps the socket; restart credsync to listen elsewhere", was.Server.Listen, now.Server.Listen)
	case was.Store.Driver == "memory" || now.Store.Driver == "memory":
		return nil, nil, errors.New("store.driver is memory: the new config's gateway would not see the running rotations; restart credsync to apply the config")
	case now.Store.Driver != was.Store.Driver || now.Store.DSN != was.Store.DSN:
		return nil, nil, errors.New("store.driver or store.dsn changed: the running rotations live in the store in force; restart credsync to move to another store")
	}
	sv.generation++
	gw, ed, err := sv.build(ctx, cfg)
	if err != nil {
		sv.generation--
		return nil, nil, err
	}
	debug.FreeOSMemory() // the parse's garbage, as at start
	return &running{gw: gw, cfg: cfg}, ed, nil
}
