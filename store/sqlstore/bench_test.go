package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credsync/credsync/core"
)

// BenchmarkRotationWrites runs the store calls of one 3-target rotation (create with its audit
// event, lease, each target running then finished with its event, status, release, read back) on
// SQLite, with the statement cache on and off, from 8 goroutines like concurrent rotations:
//
//	go test -run '^$' -bench RotationWrites -benchtime 2000x ./store/sqlstore/
func BenchmarkRotationWrites(b *testing.B) {
	for _, prepared := range []bool{true, false} {
		b.Run(fmt.Sprintf("prepared=%t", prepared), func(b *testing.B) {
			ctx := context.Background()
			s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if !prepared {
				s.b.(classifying).backend.(*sqliteBackend).stmts = nil
			}
			var n atomic.Int64
			b.SetParallelism(4) // 2 cores × 4 = 8 concurrent rotations
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := oneRotation(ctx, s, int(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/rotation")
		})
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func oneRotation(ctx context.Context, s *Store, i int) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := fmt.Sprintf("rot_bench%09d", i)
	source := fmt.Sprintf("src-%d", i%100)
	r := &core.Rotation{ID: id, Source: source, Status: core.RotationRunning, CreatedAt: now, Actor: "bench", Type: core.TypePassword}
	for t := 0; t < 3; t++ {
		r.Targets = append(r.Targets, core.TargetResult{Name: fmt.Sprintf("rg/%d", t), Platform: "rg", Vendor: "rivergen", Status: core.TargetPending})
	}
	audit := &core.AuditEvent{At: now, Actor: "bench", Action: "rotation.submitted", Source: source, RotationID: id}
	if _, err := s.CreateRotation(ctx, core.NewRotation{Rotation: r, Owner: "bench", LeaseTTL: time.Minute, Audit: audit}); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	for t := range r.Targets {
		tr := r.Targets[t]
		tr.Status = core.TargetRunning
		if err := s.UpdateTarget(ctx, id, t, tr); err != nil {
			return fmt.Errorf("update target: %w", err)
		}
		tr.Status = core.TargetSucceeded
		ev := core.AuditEvent{At: now, Action: "target.finished", Source: source, RotationID: id, Target: tr.Name, Status: string(tr.Status)}
		if err := s.FinishTarget(ctx, id, t, tr, ev); err != nil {
			return fmt.Errorf("finish target: %w", err)
		}
	}
	fin := now.Add(time.Millisecond)
	if err := s.SetRotationStatus(ctx, id, core.RotationSucceeded, &fin); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := s.ReleaseLease(ctx, id, "bench"); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if _, err := s.GetRotation(ctx, id); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	return nil
}
