package core

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errClaimLapsed ends a send whose target claim can no longer cover a call started now.
var errClaimLapsed = &lapsedError{}

type lapsedError struct{}

func (*lapsedError) Error() string {
	return "the target claim could not be renewed in time: no new call may start under it"
}

// Is makes it a context.Canceled, as a context's Err must be.
func (*lapsedError) Is(target error) bool { return target == context.Canceled }

// fence is the context a vendor write runs under: it is done when its parent is, or when its
// moving deadline passes, whichever is first. Unlike a context.WithDeadline, its Err looks at
// the clock itself: a process that was frozen (SIGSTOP, a VM pause) past the deadline sees it
// passed at once on waking, before any timer goroutine has run, so a call about to start is
// refused instead of racing the timer.
type fence struct {
	context.Context // the parent: values, deadline

	mu    sync.Mutex
	until time.Time
	done  chan struct{}
	err   error
	timer *time.Timer
	stop  func() bool // stops watching the parent
}

func newFence(parent context.Context, until time.Time) *fence {
	f := &fence{Context: parent, until: until, done: make(chan struct{})}
	f.timer = time.AfterFunc(time.Until(until), f.check)
	f.stop = context.AfterFunc(parent, func() { f.close(parent.Err()) })
	return f
}

// Done implements context.Context.
func (f *fence) Done() <-chan struct{} { return f.done }

// Err implements context.Context, reading the clock.
func (f *fence) Err() error {
	f.check()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fence) check() {
	f.mu.Lock()
	expired := f.err == nil && !time.Now().Before(f.until)
	f.mu.Unlock()
	if expired {
		f.close(errClaimLapsed)
	}
}

// extend moves the deadline later (never earlier).
func (f *fence) extend(until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil || !until.After(f.until) {
		return
	}
	f.until = until
	f.timer.Reset(time.Until(until))
}

// close ends the fence with err (the first reason wins).
func (f *fence) close(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	if err == nil {
		err = context.Canceled
	}
	f.err = err
	close(f.done)
	f.timer.Stop()
}

// release frees the fence's timer and parent watch once it is no longer used.
func (f *fence) release() {
	f.stop()
	f.close(context.Canceled)
}

// lapsed reports whether err is the fence's own deadline.
func lapsed(err error) bool { return errors.As(err, new(*lapsedError)) }
