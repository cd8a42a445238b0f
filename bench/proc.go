package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on Linux for every
// architecture Go supports).
const clockTick = 10 * time.Millisecond

// CPUTime returns the user+system CPU time a process has used so far, from /proc/<pid>/stat
// (all its threads). Its resolution is one clock tick (10 ms).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime (field 14) and stime (field 15) of a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted after
// the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// ResetPeakRSS resets a process's VmHWM to its current RSS (writing 5 to /proc/<pid>/clear_refs,
// Linux 4.0 and later), so that a later VmHWM is the peak since now.
func ResetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS of pid %d: %w", pid, err)
	}
	return nil
}

// MemStatus returns VmRSS and VmHWM (peak RSS) of a process in bytes, from /proc/<pid>/status.
func MemStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return parseStatusMem(b)
}

func parseStatusMem(b []byte) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("parse /proc status: %s: %q", k, v)
		}
		n, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("parse /proc status: %s: %w", k, perr)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("parse /proc status: VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int
	CPUModel  string
	MemTotal  string
	Kernel    string
	GoVersion string // the toolchain that built the gateway
	Date      time.Time
	LoadStart string // /proc/loadavg at the start
	LoadEnd   string
}

// DescribeMachine reads nproc, the CPU model, memory, kernel and Go version.
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Date: time.Now().UTC(), LoadStart: LoadAvg(), CPUModel: "unknown", MemTotal: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.GoVersion = runtime.Version()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	return m
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procStat is what the harness reads of one /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	comm      string
	cpu       time.Duration // utime + stime
	children  time.Duration // cutime + cstime: children that exited and were waited for
}

func parseProcStat(b []byte) (procStat, error) {
	var s procStat
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return s, fmt.Errorf("parse /proc stat: no command name in %q", b)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:i])))
	if err != nil {
		return s, fmt.Errorf("parse /proc stat: pid: %w", err)
	}
	f := strings.Fields(string(b[j+1:])) // f[0] is field 3 (state)
	if len(f) < 15 {
		return s, fmt.Errorf("parse /proc stat: %d fields after the command name", len(f))
	}
	var n [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} { // ppid, utime, stime, cutime, cstime
		if n[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return s, fmt.Errorf("parse /proc stat: field %d: %w", idx+3, err)
		}
	}
	s.pid, s.comm, s.ppid = pid, string(b[i+1:j]), int(n[0])
	s.cpu, s.children = time.Duration(n[1]+n[2])*clockTick, time.Duration(n[3]+n[4])*clockTick
	return s, nil
}

// allProcs reads every process's stat (processes that vanish meanwhile are skipped).
func allProcs() map[int]procStat {
	out := map[int]procStat{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if s, err := parseProcStat(b); err == nil {
			out[s.pid] = s
		}
	}
	return out
}

// ChildCPU is the CPU time of the processes named comm that are children of parent, and of all
// their descendants, live or exited-and-waited-for. It finds the PostgreSQL server that pgtest
// started (postgres, a child of this process) and counts its backends.
func ChildCPU(parent int, comm string) time.Duration {
	procs := allProcs()
	kids := map[int][]int{}
	for _, p := range procs {
		kids[p.ppid] = append(kids[p.ppid], p.pid)
	}
	var total time.Duration
	var walk func(pid int)
	walk = func(pid int) {
		p := procs[pid]
		total += p.cpu + p.children
		for _, k := range kids[pid] {
			walk(k)
		}
	}
	for _, k := range kids[parent] {
		if procs[k].comm == comm {
			walk(k)
		}
	}
	return total
}

// stopProcess sends sig to p and waits for exited (closed once p was waited for); after grace it
// kills p and waits again.
func stopProcess(p *os.Process, sig os.Signal, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
