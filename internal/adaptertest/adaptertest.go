// Package adaptertest drives one adapter the way the engine does, for the adapters' own tests:
// Send, then Verify again after each Again until a verdict, in real time. It has no claims,
// retries or admission: those are the engine's (core) and the HTTP client's (vendorhttp).
package adaptertest

import (
	"context"
	"time"

	"github.com/credsync/credsync/core"
)

// Result is what one delivery learned.
type Result struct {
	Send   core.SendResult
	Verify core.Verification
	Polls  int  // Verify calls made
	Retry  bool // the retry verdict of the failing call
}

// Deliver sends req through a and, when the send asks for it, verifies like the engine: Verify
// is called with Poll 0, 1, ... and the elapsed time since the send, waiting Again between
// calls, until it gives a verdict or an error. An error from Send or Verify ends it.
func Deliver(ctx context.Context, a core.Adapter, req core.Request) (Result, error) {
	var out Result
	res, retry, err := a.Send(ctx, req)
	out.Send, out.Retry = res, retry
	if err != nil {
		return out, err
	}
	if !res.Check {
		out.Verify = core.Verification{Verified: res.Verified}
		return out, nil
	}
	v, polls, retry, err := Verify(ctx, a, res)
	out.Verify, out.Polls, out.Retry = v, polls, retry
	return out, err
}

// Verify runs the verification loop of a successful send.
func Verify(ctx context.Context, a core.Adapter, res core.SendResult) (core.Verification, int, bool, error) {
	sent := time.Now()
	for poll := 0; ; poll++ {
		v, retry, err := a.Verify(ctx, core.VerifyRequest{Receipt: res.Receipt, Poll: poll, Elapsed: time.Since(sent)})
		if err != nil || v.Again <= 0 {
			return v, poll + 1, retry, err
		}
		t := time.NewTimer(v.Again)
		select {
		case <-ctx.Done():
			t.Stop()
			return core.Verification{}, poll + 1, true, ctx.Err()
		case <-t.C:
		}
	}
}
