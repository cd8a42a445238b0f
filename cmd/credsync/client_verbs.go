package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/core"
)

// defaultWait is how long rotate and status --wait follow a rotation: the gateway's default
// rotation deadline.
const defaultWait = 10 * time.Minute

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func (cc *clientCmd) rotate(args []string) int {
	const verb = "rotate"
	if refuseSecretFlags(verb, args, cc.stderr) {
		return exitBadInput
	}
	fs := newFlags(verb, cc.stderr, "Push a new credential to every target of a source through the gateway.")
	source := fs.String("source", "", "the source to rotate (required)")
	targets := fs.String("targets", "", "comma-separated target names (default: every target of the source)")
	key := fs.String("idempotency-key", "", "Idempotency-Key: resubmitting with the same key and credential returns the same rotation")
	wait := fs.Duration("wait", defaultWait, "follow the rotation this long; 0 submits and returns")
	generate := fs.Bool("generate", false, "credsync makes the credential itself (a source with rotation:); no credential on stdin")
	ci := credFlags(fs)
	cn := cc.connFlags(fs)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if !noArgs(verb, pos, cc.stderr) {
		return exitBadInput
	}
	if *source == "" {
		return cc.badInput(verb, errors.New("--source is required"))
	}
	if *wait < 0 {
		return cc.badInput(verb, errors.New("--wait must not be negative"))
	}
	c, err := cc.client(cn)
	if err != nil {
		return cc.badInput(verb, err)
	}
	var cred json.RawMessage
	if *generate {
		if ci.given() {
			return cc.badInput(verb, errors.New("--generate makes the credential: give no --password-stdin or --from-file"))
		}
	} else if cred, err = ci.read(cc.stdin); err != nil {
		return cc.badInput(verb, err)
	}
	ctx, stop := signalContext()
	defer stop()
	rot, err := c.Rotate(ctx, client.RotateRequest{Source: *source, Credential: cred, Targets: splitList(*targets), IdempotencyKey: *key, Generate: *generate})
	if err != nil {
		return cc.fail(verb, err)
	}
	if rot.Replayed {
		fmt.Fprintf(cc.stderr, "credsync rotate: Idempotency-Key %q was used before with the same request: this is rotation %s, not a new one\n", *key, rot.ID)
	}
	return cc.follow(ctx, verb, c, rot, *wait, cn.output)
}

// follow waits for a rotation (up to wait) with live progress, then prints it.
func (cc *clientCmd) follow(ctx context.Context, verb string, c *client.Client, rot *client.Rotation, wait time.Duration, output string) int {
	if wait > 0 && !rot.Status.Finished() {
		var p *progress
		if output == "table" {
			p = newProgress(cc.stdout, cc.isTerminal(cc.stdout))
			p.update(rot)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		final, err := c.Wait(wctx, rot.ID, func(r *client.Rotation) {
			if p != nil {
				p.update(r)
			}
		})
		cancel()
		if p != nil {
			p.done()
		}
		if final != nil {
			rot = final
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				fmt.Fprintf(cc.stderr, "credsync %s: interrupted; rotation %s goes on in the gateway: credsync status %s --wait\n", verb, rot.ID, rot.ID)
			case errors.Is(err, context.DeadlineExceeded):
				fmt.Fprintf(cc.stderr, "credsync %s: rotation %s had not finished after %s; it goes on in the gateway: credsync status %s --wait\n", verb, rot.ID, wait, rot.ID)
			default:
				return cc.fail(verb, err)
			}
		}
	}
	if output == "json" {
		writeJSON(cc.stdout, rot.Raw)
	} else {
		printRotation(cc.stdout, &rot.Rotation)
		if !rot.Status.Finished() && wait == 0 {
			fmt.Fprintf(cc.stdout, "Follow it: credsync status %s --wait\n", rot.ID)
		}
	}
	if wait == 0 && verb == "rotate" {
		return exitOK // submitted is what was asked
	}
	return exitForRotation(rot.Status)
}

func (cc *clientCmd) plan(args []string) int {
	const verb = "plan"
	if refuseSecretFlags(verb, args, cc.stderr) {
		return exitBadInput
	}
	fs := newFlags(verb, cc.stderr, "Dry run: show what a rotation would send to each target, secrets redacted; send nothing.")
	source := fs.String("source", "", "the source (required)")
	targets := fs.String("targets", "", "comma-separated target names (default: every target of the source)")
	generate := fs.Bool("generate", false, "the dry run of a rotation credsync makes itself: the user it would stage, the redacted requests")
	ci := credFlags(fs)
	cn := cc.connFlags(fs)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if !noArgs(verb, pos, cc.stderr) {
		return exitBadInput
	}
	if *source == "" {
		return cc.badInput(verb, errors.New("--source is required"))
	}
	c, err := cc.client(cn)
	if err != nil {
		return cc.badInput(verb, err)
	}
	var cred json.RawMessage
	if *generate {
		if ci.given() {
			return cc.badInput(verb, errors.New("--generate makes the credential: give no --password-stdin or --from-file"))
		}
	} else if cred, err = ci.read(cc.stdin); err != nil {
		return cc.badInput(verb, err)
	}
	ctx, stop := signalContext()
	defer stop()
	p, err := c.Plan(ctx, client.PlanRequest{Source: *source, Credential: cred, Targets: splitList(*targets), Generate: *generate})
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, p.Raw)
		return exitOK
	}
	fmt.Fprintf(cc.stdout, "Dry run of source %s: %d request(s), nothing sent.\n", p.Source, len(p.Requests))
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPLATFORM\tVENDOR\tREQUEST\tBODY")
	for _, r := range p.Requests {
		body := ""
		if r.Request.Body != nil {
			if b, err := json.Marshal(r.Request.Body); err == nil {
				body = string(b)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\n", r.Target, r.Platform, r.Vendor, r.Request.Method, r.Request.Path, body)
	}
	_ = tw.Flush()
	return exitOK
}

func (cc *clientCmd) status(args []string) int {
	const verb = "status"
	fs := newFlags(verb, cc.stderr, "Show a rotation: credsync status ID [--wait].")
	wait := fs.Bool("wait", false, "follow the rotation until it ends (at most --timeout)")
	timeout := fs.Duration("timeout", defaultWait, "with --wait: how long to follow")
	cn := cc.connFlags(fs)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(cc.stderr, "credsync status: give one rotation id: credsync status ID [--wait]")
		return exitBadInput
	}
	if *timeout <= 0 {
		return cc.badInput(verb, errors.New("--timeout must be positive"))
	}
	c, err := cc.client(cn)
	if err != nil {
		return cc.badInput(verb, err)
	}
	ctx, stop := signalContext()
	defer stop()
	rot, err := c.GetAll(ctx, pos[0]) // every target, a page at a time
	if err != nil {
		return cc.fail(verb, err)
	}
	w := time.Duration(0)
	if *wait {
		w = *timeout
	}
	return cc.follow(ctx, verb, c, rot, w, cn.output)
}

func (cc *clientCmd) sources(args []string) int {
	const verb = "sources"
	fs := newFlags(verb, cc.stderr, "List the configured sources and targets with each target's last outcome.")
	cn := cc.connFlags(fs)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if !noArgs(verb, pos, cc.stderr) {
		return exitBadInput
	}
	c, err := cc.client(cn)
	if err != nil {
		return cc.badInput(verb, err)
	}
	ctx, stop := signalContext()
	defer stop()
	s, err := c.Sources(ctx)
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, s.Raw)
		return exitOK
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tTARGET\tPLATFORM\tVENDOR\tACCEPTS\tLAST ROTATION\tLAST STATUS\tFINISHED\tHEALTH\tERROR")
	for _, src := range s.Sources {
		for _, t := range src.Targets {
			accepts := make([]string, len(t.Accepts))
			for i, a := range t.Accepts {
				accepts[i] = string(a)
			}
			last, status, finished, errText := "-", "never rotated", "", ""
			if t.Last != nil {
				last, status = t.Last.RotationID, string(t.Last.Status)
				if t.Last.Verified {
					status += " (verified)"
				}
				finished = formatTime(t.Last.FinishedAt)
				errText = targetError(t.Last.Error, "")
			}
			health := "-"
			if t.Health != nil {
				health = string(t.Health.Status)
				if t.Health.Status == core.HealthUnhealthy && errText == "" {
					errText = "check: " + t.Health.Message
				}
			}
			if t.Paused != nil {
				status += " (paused: " + t.Paused.Scope() + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", src.Name, t.Name, t.Platform, t.Vendor, strings.Join(accepts, ","), last, status, finished, health, errText)
		}
	}
	_ = tw.Flush()
	for _, src := range s.Sources {
		if src.SourceStatus == nil {
			continue
		}
		due := "on request only"
		if src.NextDueAt != nil {
			due = "next due " + formatTime(src.NextDueAt)
		}
		last := "never"
		if src.LastRotatedAt != nil {
			last = formatTime(src.LastRotatedAt)
		}
		if src.KeyUser != "" {
			fmt.Fprintf(cc.stdout, "Source %s is rotated by credsync: user %s, active key slot %s (slots %s), last rotated %s, %s",
				src.Name, src.KeyUser, src.ActiveUser, strings.Join(src.Users, ", "), last, due)
		} else {
			fmt.Fprintf(cc.stdout, "Source %s is rotated by credsync: active user %s (users %s), last rotated %s, %s",
				src.Name, src.ActiveUser, strings.Join(src.Users, ", "), last, due)
		}
		if src.RetireUser != "" && src.RetireAt != nil {
			fmt.Fprintf(cc.stdout, "; %s is retired at %s", src.RetireUser, formatTime(src.RetireAt))
		}
		if len(src.InUse) > 1 {
			both := "users"
			if src.KeyUser != "" {
				both = "key slots"
			}
			fmt.Fprintf(cc.stdout, "; targets hold both %s: retry the last rotation", both)
		}
		fmt.Fprintln(cc.stdout, ".")
	}
	return exitOK
}

func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Local().Format(time.RFC3339)
}

func targetError(e *core.Error, warning string) string {
	switch {
	case e != nil:
		return e.Code + ": " + e.Message
	case warning != "":
		return "warning: " + warning
	}
	return ""
}

// printRotation prints a rotation's summary line and its per-target table.
func printRotation(w io.Writer, r *core.Rotation) {
	ok := 0
	for _, t := range r.Targets {
		if t.Status == core.TargetSucceeded {
			ok++
		}
	}
	fmt.Fprintf(w, "Rotation %s of source %s (%s): %s, %d of %d target(s) succeeded.\n", r.ID, r.Source, r.Type, r.Status, ok, len(r.Targets))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tPLATFORM\tVENDOR\tSTATUS\tVERIFIED\tATTEMPTS\tERROR")
	for _, t := range r.Targets {
		status := string(t.Status)
		if t.Paused {
			status += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%s\n", t.Name, t.Platform, t.Vendor, status, t.Verified, t.Attempts, targetError(t.Error, t.Warning))
	}
	_ = tw.Flush()
}

// progress shows a running rotation's targets. On a terminal it redraws one line per target in
// place; otherwise it prints a line each time a target's state changes.
type progress struct {
	w        io.Writer
	terminal bool
	start    time.Time
	drawn    int               // terminal: lines drawn last time
	seen     map[string]string // not a terminal: the last state printed per target
	header   bool
}

func newProgress(w io.Writer, terminal bool) *progress {
	return &progress{w: w, terminal: terminal, start: time.Now(), seen: map[string]string{}}
}

func targetState(t core.TargetResult) string {
	s := string(t.Status)
	if t.Paused {
		s += " (paused)"
	}
	if t.Attempts > 1 {
		s += fmt.Sprintf(" (attempt %d)", t.Attempts)
	}
	if t.Status == core.TargetSucceeded && t.Verified {
		s += ", verified"
	}
	if t.Error != nil && t.Status.Finished() {
		s += ": " + t.Error.Code
	}
	return s
}

func (p *progress) update(r *client.Rotation) {
	if !p.header {
		p.header = true
		fmt.Fprintf(p.w, "Rotation %s of source %s: %d target(s)\n", r.ID, r.Source, len(r.Targets))
	}
	if !p.terminal {
		for _, t := range r.Targets {
			st := targetState(t)
			if p.seen[t.Name] == st {
				continue
			}
			p.seen[t.Name] = st
			fmt.Fprintf(p.w, "  %6.1fs  %-24s %s\n", time.Since(p.start).Seconds(), t.Name, st)
		}
		return
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the first line of the block
	}
	for _, t := range r.Targets {
		mark := "…"
		switch t.Status {
		case core.TargetSucceeded:
			mark = "✓"
		case core.TargetFailed:
			mark = "✗"
		case core.TargetSuperseded:
			mark = "-"
		}
		fmt.Fprintf(&b, "\x1b[2K  %s %-24s %-10s %s\n", mark, t.Name, t.Vendor, targetState(t))
	}
	fmt.Fprintf(&b, "\x1b[2K  %s elapsed, rotation %s\n", time.Since(p.start).Round(100*time.Millisecond), r.Status)
	p.drawn = len(r.Targets) + 1
	_, _ = io.WriteString(p.w, b.String())
}

// done ends the live display; the final table follows it.
func (p *progress) done() {
	if p.terminal && p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn) // the table replaces the live block
		p.drawn = 0
	}
}
