package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// serveSignals is how serve reacts to signals. ctx ends at the first SIGTERM or SIGINT (the
// gateway drains, then shuts down gracefully); endDrain closes at the second (the drain delay
// ends at once). Each SIGHUP sends on reload (one pending at most: signals that arrive while a
// reload is being made are one more reload). stop undoes all of this.
func serveSignals(log *zap.Logger) (ctx context.Context, endDrain <-chan struct{}, reload <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	end := make(chan struct{})
	hup := make(chan struct{}, 1)
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
				select {
				case hup <- struct{}{}:
				default: // a reload is already pending: it reads the file as it is then
				}
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
	return ctx, end, hup, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
