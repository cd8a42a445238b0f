package gateway

import (
	"time"

	"go.uber.org/zap"
)

// drain runs when the gateway is told to stop and before it closes its listener: /readyz
// answers 503 shutting_down from now on, and for Options.DrainDelay (unless EndDrain closes
// first) the gateway goes on serving everything else as before, so that load balancers and
// Kubernetes, which poll /readyz, stop sending new requests before connections are refused.
func (g *Gateway) drain() {
	g.API.ShuttingDown()
	d := g.opts.DrainDelay
	if d <= 0 {
		return
	}
	g.log.Info("draining: /readyz answers 503 shutting_down; still serving until the drain delay ends", zap.Duration("drain_delay", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.opts.EndDrain: // a nil channel never ends the drain early
		g.log.Info("drain ended early")
	}
}
