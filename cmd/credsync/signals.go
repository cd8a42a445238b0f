package main

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// serveSignals is how serve reacts to signals. ctx ends at the first SIGTERM or SIGINT (the
// gateway drains, then shuts down gracefully); endDrain closes at the second (the drain delay
// ends at once). SIGHUP does not stop the gateway: there is no reload (the config, tokens and
// targets are read once at start and held by the running engine), so it is logged, saying
// whether the file changed since start, and otherwise ignored. stop undoes all of this.
func serveSignals(log *zap.Logger, cfgPath string) (ctx context.Context, endDrain <-chan struct{}, stop func()) {
	startSum := fileSum(cfgPath)
	ctx, cancel := context.WithCancel(context.Background())
	end := make(chan struct{})
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		stopping, ended := false, false
		for {
			var s os.Signal
			select {
			case <-done:
				return
			case s = <-sigs:
			}
			switch {
			case s == syscall.SIGHUP:
				log.Warn("SIGHUP received: reload is not supported, the config is read at start only; restart credsync to apply a change (still running on the config read at start)",
					zap.String("config", cfgPath), zap.Bool("config_changed_since_start", fileSum(cfgPath) != startSum))
			case !stopping:
				stopping = true
				log.Info("stop signal received", zap.String("signal", s.String()))
				cancel()
			case !ended:
				ended = true
				log.Info("second stop signal received: ending the drain delay now", zap.String("signal", s.String()))
				close(end)
			}
		}
	}()
	return ctx, end, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// fileSum is the SHA-256 of a file's content, or "" when it cannot be read.
func fileSum(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}
