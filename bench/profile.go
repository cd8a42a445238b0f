package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Profile is the top of a perf profile of the gateway process.
type Profile struct {
	Title    string
	Samples  string   // perf's sample count line
	Self     []string // "12.3%  symbol", by self time
	Children []string // by time including callees
	Own      []string // credsync's own functions, by time including callees
	Err      string
}

// perfRecorder is `perf record -g -p <gateway pid>` running beside a measurement.
type perfRecorder struct {
	cmd  *exec.Cmd
	path string
	out  bytes.Buffer
	done chan struct{}
	once sync.Once
}

// startPerf attaches perf to pid (sampling at 499 Hz with call graphs from frame pointers).
func startPerf(ctx context.Context, pid int, dir string) (*perfRecorder, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("perf not found: %w", err)
	}
	p := &perfRecorder{path: filepath.Join(dir, fmt.Sprintf("perf-%d.data", pid)), done: make(chan struct{})}
	p.cmd = exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", p.path)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	time.Sleep(200 * time.Millisecond) // let perf attach before the measurement starts
	select {
	case <-p.done:
		return nil, fmt.Errorf("perf exited at once: %s", snippet(p.out.Bytes()))
	default:
	}
	return p, nil
}

// finish stops perf and waits for it to write its data; later calls do nothing.
func (p *perfRecorder) finish() {
	p.once.Do(func() {
		stopProcess(p.cmd.Process, syscall.SIGINT, p.done, 30*time.Second)
	})
}

// discard stops perf (if stop has not) and drops its data; a nil recorder is fine.
func (p *perfRecorder) discard() {
	if p == nil {
		return
	}
	p.finish()
	_ = os.Remove(p.path)
}

// stop stops perf and reads the top of its report.
func (p *perfRecorder) stop(ctx context.Context, title string) *Profile {
	pr := &Profile{Title: title}
	p.finish()
	defer func() { _ = os.Remove(p.path) }()
	self, samples, err := perfReport(ctx, p.path, "--no-children")
	if err != nil {
		pr.Err = err.Error()
		return pr
	}
	children, _, err := perfReport(ctx, p.path, "--children")
	if err != nil {
		pr.Err = err.Error()
		return pr
	}
	var own []string
	for _, l := range children {
		if strings.Contains(l, "github.com/credsync/credsync/") {
			own = append(own, strings.ReplaceAll(l, "github.com/credsync/credsync/", ""))
		}
	}
	pr.Samples, pr.Self, pr.Children, pr.Own = samples, top(self, 20), top(children, 20), top(own, 30)
	return pr
}

// perfReport returns the "NN.NN%  symbol" lines of perf report, by symbol.
func perfReport(ctx context.Context, path, mode string) ([]string, string, error) {
	cmd := exec.CommandContext(ctx, "perf", "report", "-i", path, "--stdio", mode, "--sort", "symbol", "-g", "none", "--percent-limit", "0.5")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("perf report: %w: %s", err, snippet(errOut.Bytes()))
	}
	return parsePerfReport(out.String())
}

// parsePerfReport keeps the percentage and symbol of each entry line, and the sample count.
func parsePerfReport(text string) ([]string, string, error) {
	var lines []string
	samples := ""
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "# Samples:") {
			samples = strings.TrimPrefix(t, "# ")
		}
		if t == "" || strings.HasPrefix(t, "#") || !strings.Contains(t, "%") {
			continue
		}
		f := strings.Fields(t)
		// "--children": Children Self [.] symbol; "--no-children": Self [.] symbol
		var pct []string
		i := 0
		for ; i < len(f) && strings.HasSuffix(f[i], "%"); i++ {
			pct = append(pct, f[i])
		}
		if len(pct) == 0 || i >= len(f) {
			continue
		}
		if f[i] == "[.]" || f[i] == "[k]" {
			i++
		}
		sym := f[i:]
		for len(sym) > 1 && sym[len(sym)-1] == "-" { // perf's empty caller columns with -g none
			sym = sym[:len(sym)-1]
		}
		lines = append(lines, fmt.Sprintf("%7s  %s", pct[0], strings.Join(sym, " ")))
	}
	if len(lines) == 0 {
		return nil, samples, fmt.Errorf("perf report: no samples")
	}
	return lines, samples, nil
}

func top(ls []string, n int) []string {
	if len(ls) > n {
		return ls[:n]
	}
	return ls
}
