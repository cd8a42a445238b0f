package core

import (
	"context"
	"fmt"
	"sync"
)

// fanOut runs fn for every target of items on a bounded pool of workers, rather than a
// goroutine each: a 10,000-target fan-out would otherwise park 10,000 goroutines (and their
// stacks) on a few platform slots. Twice the slots of the platforms involved keeps the slots busy
// while other workers back off, poll or wait for a claim; the platform admission bounds each
// platform's calls.
func fanOut[T any](items []T, platformOf func(T) string, slots func(platform string) int, fn func(T)) {
	seen := map[string]bool{}
	workers := 0
	for _, it := range items {
		if p := platformOf(it); !seen[p] {
			seen[p] = true
			workers += 2 * max(1, slots(p))
		}
	}
	workers = max(1, min(workers, len(items)))
	queue := make(chan T)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range queue {
				fn(it)
			}
		}()
	}
	for _, it := range items {
		queue <- it
	}
	close(queue)
	wg.Wait()
}

// CheckedTarget is one target's check.
type CheckedTarget struct {
	Source   string      `json:"source"`
	Target   string      `json:"target"`
	Platform string      `json:"platform"`
	Vendor   string      `json:"vendor"`
	Result   CheckResult `json:"result"`
}

// CheckAll runs every target's non-mutating check (credsync check), concurrently on the same
// bounded pool a rotation uses; each call passes its platform's admission like any other, so
// concurrency bounds and rate limits hold. A check still running when ctx ends is unreachable.
// Results are in config order.
func CheckAll(ctx context.Context, sources []*Source, platforms []Platform) []CheckedTarget {
	slots := map[string]int{}
	for _, p := range platforms {
		slots[p.Name] = p.WithDefaults().MaxConcurrency
	}
	var out []CheckedTarget
	var targets []*Target
	for _, s := range sources {
		for _, t := range s.Targets {
			out = append(out, CheckedTarget{Source: s.Name, Target: t.Name, Platform: t.Platform, Vendor: t.Vendor})
			targets = append(targets, t)
		}
	}
	idx := make([]int, len(targets))
	for i := range idx {
		idx[i] = i
	}
	fanOut(idx, func(i int) string { return targets[i].Platform }, func(p string) int { return slots[p] }, func(i int) {
		out[i].Result = checkOne(ctx, targets[i])
	})
	return out
}

// checkOne runs one target's check and gives up when ctx ends, even if the adapter does not.
func checkOne(ctx context.Context, t *Target) CheckResult {
	c, ok := t.Adapter.(Checker)
	if !ok {
		return CheckResult{Status: CheckUnknown, Message: fmt.Sprintf("the %s adapter has no check", t.Vendor)}
	}
	done := make(chan CheckResult, 1)
	go func() { done <- c.Check(ctx) }()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		return CheckResult{Status: CheckUnreachable, Message: "no answer before the check's time ran out"}
	}
}
