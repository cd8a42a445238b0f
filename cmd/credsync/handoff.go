package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

// handoff owns the listening socket across config reloads. One goroutine accepts on it and
// hands each connection to whichever server asks first, through a listener of its own (a
// lane). A reload starts the new config's server on a new lane, then closes the old lane: the
// socket never closes, no connection is refused, and none is served by a server that has
// stopped asking.
type handoff struct {
	l     net.Listener
	conns chan net.Conn
	done  chan struct{} // closed when the socket is closed
	once  sync.Once
	err   error // why accepting stopped; set before done closes
}

func newHandoff(l net.Listener) *handoff {
	h := &handoff{l: l, conns: make(chan net.Conn), done: make(chan struct{})}
	go h.accept()
	return h
}

// accept runs until the socket is closed. Errors that may pass (too many open files, a
// connection reset before it was accepted) are retried with a growing pause, as net/http does.
func (h *handoff) accept() {
	var pause time.Duration
	for {
		c, err := h.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				h.stop(err)
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(pause):
				continue
			case <-h.done:
				return
			}
		}
		pause = 0
		select {
		case h.conns <- c:
		case <-h.done:
			_ = c.Close()
			return
		}
	}
}

func (h *handoff) stop(err error) {
	h.once.Do(func() {
		h.err = err
		close(h.done)
	})
}

// Close closes the socket: connections are refused from now on.
func (h *handoff) Close() error {
	err := h.l.Close()
	h.stop(net.ErrClosed)
	return err
}

// lane returns a listener for one server. onClose, if not nil, runs when the lane is closed
// (serve closes the socket there when the lane of the last server closes on a stop signal).
func (h *handoff) lane(onClose func(*lane)) *lane {
	return &lane{h: h, closed: make(chan struct{}), onClose: onClose}
}

// lane is one server's listener on the handoff. Closing it closes only the lane.
type lane struct {
	h       *handoff
	closed  chan struct{}
	once    sync.Once
	onClose func(*lane)
}

// Accept implements net.Listener.
func (l *lane) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.h.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.h.done:
		return nil, l.h.err
	}
}

// Close implements net.Listener: this server asks for no more connections.
func (l *lane) Close() error {
	l.once.Do(func() {
		close(l.closed)
		if l.onClose != nil {
			l.onClose(l)
		}
	})
	return nil
}

// Addr implements net.Listener.
func (l *lane) Addr() net.Addr { return l.h.l.Addr() }
