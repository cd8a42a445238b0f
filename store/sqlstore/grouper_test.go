package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGrouperBatchesAndHandsTheLeadOn: requests queued while a batch runs form the next batch;
// the caller that leads runs at most leadBatches batches while requests keep queueing, then hands
// the lead to the first caller waiting, and each caller returns once its own batch has run.
func TestGrouperBatchesAndHandsTheLeadOn(t *testing.T) {
	type req struct {
		name string
		hold chan struct{} // the batch holding this request waits for it
	}
	started := make(chan []string, 20)
	g := &grouper[*req]{run: func(batch []*req) {
		var names []string
		for _, r := range batch {
			names = append(names, r.name)
		}
		started <- names
		for _, r := range batch {
			<-r.hold
		}
	}}
	newReq := func(name string) *req { return &req{name: name, hold: make(chan struct{})} }
	add := func(r *req) chan struct{} {
		returned := make(chan struct{})
		go func() { g.add(r); close(returned) }()
		return returned
	}
	queued := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.pending) == n
		}, 5*time.Second, time.Millisecond)
	}
	wait := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal(what)
		}
	}
	notYet := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
			t.Fatal(what)
		case <-time.After(20 * time.Millisecond):
		}
	}

	// Batch 1: a alone. b and c queue behind it and form batch 2.
	a := newReq("a")
	aReturned := add(a)
	require.Equal(t, []string{"a"}, <-started)
	b, c := newReq("b"), newReq("c")
	bReturned, cReturned := add(b), add(c)
	queued(2)
	close(a.hold)
	require.ElementsMatch(t, []string{"b", "c"}, <-started, "what queued during a batch goes in the next one")
	notYet(aReturned, "a handed the lead on before leadBatches batches")
	notYet(bReturned, "b returned before its batch ran")

	// Batches 3.. : one request queues during each batch. a runs batches up to leadBatches.
	prev := []*req{b, c}
	var last *req
	var lastReturned chan struct{}
	for n := 3; n <= leadBatches+1; n++ {
		r := newReq(fmt.Sprint("r", n))
		returned := add(r)
		queued(1)
		for _, p := range prev {
			close(p.hold)
		}
		require.Equal(t, []string{r.name}, <-started)
		if n <= leadBatches {
			notYet(aReturned, fmt.Sprintf("a handed the lead on after %d batches", n-1))
		} else {
			wait(aReturned, "a's caller was kept after leadBatches batches")
		}
		prev, last, lastReturned = []*req{r}, r, returned
	}
	wait(bReturned, "b's caller did not return")
	wait(cReturned, "c's caller did not return")
	notYet(lastReturned, "the last request returned before its batch ran")
	close(last.hold)
	wait(lastReturned, "the caller leading the last batch did not return")

	// Once the queue is empty the next request leads again.
	d := newReq("d")
	close(d.hold)
	dReturned := add(d)
	require.Equal(t, []string{"d"}, <-started)
	wait(dReturned, "d's caller did not return")
}
