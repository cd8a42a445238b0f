package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
)

// MemSnapshot is the memory of an in-process gateway (gateway.New, the config the harness
// generates) taken in the middle of one rotation: once half of its targets were sent.
type MemSnapshot struct {
	N       int
	Latency time.Duration
	Verify  bool
	Wall    time.Duration // the whole rotation

	Goroutines int
	// From runtime.MemStats at the snapshot, before any forced GC.
	HeapInuse, HeapAlloc, StackInuse, Sys, HeapSys, HeapReleased, NextGC uint64
	// The largest values seen by sampling runtime.MemStats every 50 ms from the POST to its answer.
	PeakHeapInuse, PeakStackInuse uint64
	PeakGoroutines                int
	// After a forced GC: what is really live.
	LiveHeap uint64
	TopHeap  []string // `go tool pprof -top -sample_index=inuse_space` of the heap profile
	Note     string
	Err      string
	Command  string
}

// SnapshotMemory runs one rotation of n RiverGen targets in this process and takes the snapshot.
// The fake vendors and the client run in the same process: their share of the heap shows under
// their own functions in the profile (the fakes keep every request they received).
func (rr *rotationRun) snapshotMemory(ctx context.Context, n int, lat time.Duration, verify bool) *MemSnapshot {
	res := &MemSnapshot{N: n, Latency: lat, Verify: verify,
		Command: fmt.Sprintf("go run ./bench/cmd/credsync-bench -n none -inproc %d -latency %s", n, fmtLatency(lat))}
	if err := rr.runSnapshot(ctx, res); err != nil {
		res.Err = err.Error()
	}
	return res
}

func (rr *rotationRun) runSnapshot(ctx context.Context, res *MemSnapshot) error {
	v := rr.vendors
	v.seedRiverGen(res.N)
	v.setLatency(res.Latency)
	defer v.setLatency(0)
	defer v.forget()

	dir, err := os.MkdirTemp(rr.tmp, "inproc-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	spec := configSpec{Store: store{Driver: "sqlite"}, Concurrency: rr.o.Concurrency, Sources: []src{riverGenSource("bench", 1, res.N, res.Verify)}, Poll: rr.o.PollInterval.String()}
	token := "bench-" + randHex(16)
	env := v.Env(token)
	cfg, err := config.Parse([]byte(spec.render(l.Addr().String(), dir, v)), func(k string) (string, bool) { s, ok := env[k]; return s, ok })
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("config: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("log file: %w", err)
	}
	defer func() { _ = logf.Close() }()
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.EncodeTime = "ts", zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logf), zap.InfoLevel))
	gw, err := gateway.New(ctx, cfg, log, gateway.Options{ShutdownGrace: 5 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("gateway.New: %w", err)
	}
	gctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- gw.Serve(gctx, l) }()
	defer func() { stop(); <-served }()

	g := &gatewayProc{base: "http://" + l.Addr().String(), token: token, client: &http.Client{}}
	defer g.client.CloseIdleConnections()
	if err := g.waitHealthyInProc(ctx); err != nil {
		return err
	}

	base := v.snapshot()[callRiverGenPatch]
	type answer struct {
		wall time.Duration
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, rr.o.RunTimeout)
		defer cancel()
		st, b, err := g.call(rctx, http.MethodPost, "/v1/rotations?wait=10m", rotationBody("bench"))
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("POST /v1/rotations: HTTP %d: %s", st, snippet(b))
		}
		done <- answer{time.Since(start), err}
	}()

	// Sample the peaks until the answer; take the snapshot once half the targets were sent.
	sampleDone := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			res.PeakHeapInuse, res.PeakStackInuse = max(res.PeakHeapInuse, ms.HeapInuse), max(res.PeakStackInuse, ms.StackInuse)
			res.PeakGoroutines = max(res.PeakGoroutines, runtime.NumGoroutine())
			select {
			case <-sampleDone:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(sampleDone)
		<-sampled
		// The snapshot is a sample too: the peaks include it.
		res.PeakHeapInuse, res.PeakStackInuse = max(res.PeakHeapInuse, res.HeapInuse), max(res.PeakStackInuse, res.StackInuse)
		res.PeakGoroutines = max(res.PeakGoroutines, res.Goroutines)
	}()
	for taken := false; !taken; {
		select {
		case a := <-done:
			return fmt.Errorf("the rotation ended before the snapshot: %v", a.err)
		case <-time.After(5 * time.Millisecond):
		}
		if v.snapshot()[callRiverGenPatch]-base >= res.N/2 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			res.Goroutines = runtime.NumGoroutine()
			res.HeapInuse, res.HeapAlloc, res.StackInuse, res.Sys = ms.HeapInuse, ms.HeapAlloc, ms.StackInuse, ms.Sys
			res.HeapSys, res.HeapReleased, res.NextGC = ms.HeapSys, ms.HeapReleased, ms.NextGC
			runtime.GC()
			runtime.ReadMemStats(&ms)
			res.LiveHeap = ms.HeapAlloc
			path := filepath.Join(dir, "heap.pb.gz")
			f, err := os.Create(path)
			if err != nil {
				return fmt.Errorf("heap profile: %w", err)
			}
			err = pprof.Lookup("heap").WriteTo(f, 0)
			_ = f.Close()
			if err != nil {
				return fmt.Errorf("heap profile: %w", err)
			}
			if res.TopHeap, err = pprofTop(ctx, path); err != nil {
				res.Note = err.Error()
			}
			taken = true
		}
	}
	a := <-done
	res.Wall = a.wall
	return a.err
}

func (g *gatewayProc) waitHealthyInProc(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, _, err := g.call(ctx, http.MethodGet, "/healthz", nil); err == nil && st == http.StatusOK {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("in-process gateway not healthy within 30s")
}

// pprofTop is the top of a heap profile by in-use space.
func pprofTop(ctx context.Context, path string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", path)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool pprof: %w: %s", err, snippet(errOut.Bytes()))
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, nil
}
