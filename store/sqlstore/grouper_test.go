package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGrouperFreesEachCallerAfterItsOwnBatch: requests queued while a batch runs form the next
// batch, and no caller is kept running the batches queued behind its own (under steady load
// that held one POST or one target for the whole burst).
func TestGrouperFreesEachCallerAfterItsOwnBatch(t *testing.T) {
	type req struct {
		name string
		hold chan struct{} // the batch holding this request waits for it
		done chan struct{}
	}
	started := make(chan []string, 10)
	g := &grouper[*req]{run: func(batch []*req) {
		var names []string
		for _, r := range batch {
			names = append(names, r.name)
		}
		started <- names
		for _, r := range batch {
			<-r.hold
			close(r.done)
		}
	}}
	newReq := func(name string) *req {
		return &req{name: name, hold: make(chan struct{}), done: make(chan struct{})}
	}
	add := func(r *req) chan struct{} {
		returned := make(chan struct{})
		go func() { g.add(r); close(returned) }()
		return returned
	}
	wait := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal(what)
		}
	}

	a, b, c := newReq("a"), newReq("b"), newReq("c")
	aReturned := add(a)
	require.Equal(t, []string{"a"}, <-started)
	bReturned := add(b) // queued while a's batch runs
	wait(bReturned, "add(b) did not return")
	cReturned := add(c)
	wait(cReturned, "add(c) did not return")
	close(a.hold)
	wait(a.done, "a was not answered")
	require.Equal(t, []string{"b", "c"}, <-started, "what queued during a batch goes in the next one")
	wait(aReturned, "a's caller is kept running the next batch")
	close(b.hold)
	close(c.hold)
	wait(c.done, "c was not answered")

	// Once the queue is empty the next request starts a batch again.
	d := newReq("d")
	close(d.hold)
	add(d)
	require.Equal(t, []string{"d"}, <-started)
	wait(d.done, "d was not answered")
}
