package main

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A closed lane takes no more connections, the socket stays open, and the next lane gets the
// connections; closing the handoff closes the socket and ends every lane's Accept.
func TestHandoffKeepsTheSocketAcrossLanes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := newHandoff(l)
	closedLanes := 0
	first := h.lane(func(*lane) { closedLanes++ })

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := first.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c1.Close()
	select {
	case c := <-accepted:
		_ = c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the first lane did not get the connection")
	}

	require.NoError(t, first.Close())
	require.Equal(t, 1, closedLanes)
	_, err = first.Accept()
	require.ErrorIs(t, err, net.ErrClosed, "a closed lane takes no more connections")

	// The socket is still open: a connection made now waits for the next lane.
	c2, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err, "closing a lane does not close the socket")
	defer c2.Close()
	second := h.lane(nil)
	got := make(chan error, 1)
	go func() {
		c, err := second.Accept()
		if err == nil {
			_ = c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the second lane did not get the connection made between the lanes")
	}

	require.NoError(t, h.Close())
	_, err = second.Accept()
	require.True(t, errors.Is(err, net.ErrClosed), "after the socket closes, Accept says so: %v", err)
	_, err = net.DialTimeout("tcp", l.Addr().String(), time.Second)
	require.Error(t, err, "the socket is closed")
}
