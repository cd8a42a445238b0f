package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/core"
)

// The operator's verbs beside rotate and status: retry a rotation, list rotations and the audit
// trail, and pause and resume vendor calls.

// opsUsage documents them in credsync --help (after sources).
const opsUsage = `  credsync retry    ID [--wait 10m] [client flags]
        Send a finished rotation's credential again to its targets that did not succeed, and
        follow it like rotate.
  credsync rotations [--source S] [--status pending|running|succeeded|partial|failed|superseded]
                    [--limit 20] [client flags]
        The newest rotations, with their per-status target counts.
  credsync audit    [--source S] [--rotation ID] [--limit 50] [client flags]
        The audit trail, newest first: which token did what, and each target's outcome.
  credsync pause    (--platform P | --source S | --all) --reason TEXT [client flags]
        Stop new vendor calls to that platform, source (both: that platform for that source) or
        everything; rotations are still accepted and wait, calls in flight finish. It holds across
        restarts and replicas until resumed. Needs a token with the admin action.
  credsync resume   ID [client flags]
        End a pause; the targets it held go on within a second.
  credsync pauses   [--all] [client flags]
        The active pauses (--all: the ended ones too).`

// prepare parses a verb's command line and makes its client. check refuses what the flags and
// positional arguments cannot mean (nil: the verb takes no positional argument). ok false:
// return code (the refusal is printed).
func (cc *clientCmd) prepare(verb string, fs *flag.FlagSet, cn *conn, args []string, check func(pos []string) error) (*client.Client, []string, int, bool) {
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return nil, nil, code, false
	}
	if check == nil {
		check = noPositional
	}
	if err := check(pos); err != nil {
		return nil, nil, cc.badInput(verb, err), false
	}
	c, err := cc.client(cn)
	if err != nil {
		return nil, nil, cc.badInput(verb, err), false
	}
	return c, pos, 0, true
}

// noPositional refuses positional arguments.
func noPositional(pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	return nil
}

// checkLimit refuses a --limit the API would.
func checkLimit(limit int) error {
	if limit < 1 || limit > 1000 {
		return errors.New("--limit: a number from 1 to 1000")
	}
	return nil
}

func (cc *clientCmd) retry(args []string) int {
	const verb = "retry"
	fs := newFlags(verb, cc.stderr, "Send a rotation again to its targets that did not succeed: credsync retry ID.")
	wait := fs.Duration("wait", defaultWait, "follow the retry this long; 0 returns at once")
	cn := cc.connFlags(fs)
	c, pos, code, ok := cc.prepare(verb, fs, cn, args, func(pos []string) error {
		if len(pos) != 1 {
			return errors.New("give one rotation id: credsync retry ID")
		}
		if *wait < 0 {
			return errors.New("--wait must not be negative")
		}
		return nil
	})
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	rot, err := c.Retry(ctx, pos[0])
	if err != nil {
		return cc.fail(verb, err)
	}
	code = cc.follow(ctx, verb, c, rot, *wait, cn.output)
	if *wait == 0 {
		return exitOK // sent again is what was asked
	}
	return code
}

func (cc *clientCmd) rotations(args []string) int {
	const verb = "rotations"
	fs := newFlags(verb, cc.stderr, "List the newest rotations.")
	source := fs.String("source", "", "only this source's")
	status := fs.String("status", "", "only rotations in this status")
	limit := fs.Int("limit", 20, "at most this many (1 to 1000)")
	cn := cc.connFlags(fs)
	c, _, code, ok := cc.prepare(verb, fs, cn, args, func(pos []string) error {
		if err := noPositional(pos); err != nil {
			return err
		}
		return checkLimit(*limit)
	})
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	l, err := c.List(ctx, client.ListOptions{Source: *source, Status: core.RotationStatus(*status), Limit: *limit})
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, l.Raw)
		return exitOK
	}
	if len(l.Rotations) == 0 {
		fmt.Fprintln(cc.stdout, "No rotation.")
		return exitOK
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROTATION\tSOURCE\tSTATUS\tTARGETS\tCREATED\tFINISHED\tBY")
	for _, r := range l.Rotations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Source, r.Status, countsText(r.TargetCounts),
			formatTime(&r.CreatedAt), formatTime(r.FinishedAt), r.Actor)
	}
	_ = tw.Flush()
	if l.NextBefore != "" {
		fmt.Fprintf(cc.stdout, "More: the gateway's GET /v1/rotations?before=%s\n", l.NextBefore)
	}
	return exitOK
}

// countsText says a rotation's target counts, e.g. "2 succeeded, 1 failed".
func countsText(counts map[core.TargetStatus]int) string {
	var parts []string
	for _, s := range []core.TargetStatus{core.TargetSucceeded, core.TargetFailed, core.TargetSuperseded, core.TargetRunning, core.TargetPending} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func (cc *clientCmd) audit(args []string) int {
	const verb = "audit"
	fs := newFlags(verb, cc.stderr, "The audit trail, newest first.")
	source := fs.String("source", "", "only this source's events")
	rotation := fs.String("rotation", "", "only this rotation's events")
	limit := fs.Int("limit", 50, "at most this many (1 to 1000)")
	cn := cc.connFlags(fs)
	c, _, code, ok := cc.prepare(verb, fs, cn, args, func(pos []string) error {
		if err := noPositional(pos); err != nil {
			return err
		}
		return checkLimit(*limit)
	})
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := c.Audit(ctx, client.AuditOptions{Source: *source, RotationID: *rotation, Limit: *limit})
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, a.Raw)
		return exitOK
	}
	if len(a.Events) == 0 {
		fmt.Fprintln(cc.stdout, "No audit event.")
		return exitOK
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tBY\tACTION\tSOURCE\tROTATION\tTARGET\tSTATUS\tDETAIL")
	for _, e := range a.Events {
		by := e.Actor
		if by == "" {
			by = "(gateway)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(&e.At), by, e.Action, dash(e.Source), dash(e.RotationID), dash(e.Target), dash(e.Status), e.Detail)
	}
	_ = tw.Flush()
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (cc *clientCmd) pause(args []string) int {
	const verb = "pause"
	fs := newFlags(verb, cc.stderr, "Stop new vendor calls to a platform, a source, or everything, until resumed.")
	platform := fs.String("platform", "", "pause this platform")
	source := fs.String("source", "", "pause this source (with --platform: that platform for this source)")
	all := fs.Bool("all", false, "pause everything")
	reason := fs.String("reason", "", "why, for whoever resumes it (required)")
	cn := cc.connFlags(fs)
	c, _, code, ok := cc.prepare(verb, fs, cn, args, func(pos []string) error {
		switch {
		case len(pos) > 0:
			return noPositional(pos)
		case *all && (*platform != "" || *source != ""):
			return errors.New("--all pauses everything: give it without --platform and --source")
		case !*all && *platform == "" && *source == "":
			return errors.New("say what to pause: --platform P, --source S, or --all for everything")
		case strings.TrimSpace(*reason) == "":
			return errors.New("--reason is required: say why, for whoever resumes it")
		}
		return nil
	})
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	p, err := c.Pause(ctx, client.PauseRequest{Platform: *platform, Source: *source, Reason: *reason})
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, p.Raw)
		return exitOK
	}
	fmt.Fprintf(cc.stdout, "Paused %s (%s): no new vendor call starts there; rotations wait. End it: credsync resume %s\n", p.Scope(), p.ID, p.ID)
	return exitOK
}

func (cc *clientCmd) resume(args []string) int {
	const verb = "resume"
	fs := newFlags(verb, cc.stderr, "End a pause: credsync resume ID.")
	cn := cc.connFlags(fs)
	c, pos, code, ok := cc.prepare(verb, fs, cn, args, func(pos []string) error {
		if len(pos) != 1 {
			return errors.New("give one pause id (credsync pauses lists them): credsync resume ID")
		}
		return nil
	})
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	p, err := c.Resume(ctx, pos[0])
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, p.Raw)
		return exitOK
	}
	fmt.Fprintf(cc.stdout, "Resumed %s (%s): held targets go on.\n", p.Scope(), p.ID)
	return exitOK
}

func (cc *clientCmd) pauses(args []string) int {
	const verb = "pauses"
	fs := newFlags(verb, cc.stderr, "List the active pauses.")
	all := fs.Bool("all", false, "the ended pauses too")
	cn := cc.connFlags(fs)
	c, _, code, ok := cc.prepare(verb, fs, cn, args, nil)
	if !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	ps, err := c.Pauses(ctx, *all)
	if err != nil {
		return cc.fail(verb, err)
	}
	if cn.output == "json" {
		writeJSON(cc.stdout, ps.Raw)
		return exitOK
	}
	if len(ps.Pauses) == 0 {
		fmt.Fprintln(cc.stdout, "No pause: every vendor call may go.")
		return exitOK
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAUSE\tHOLDS\tREASON\tBY\tSINCE\tENDED")
	for _, p := range ps.Pauses {
		ended := "-"
		if p.EndedAt != nil {
			ended = formatTime(p.EndedAt) + " by " + dash(p.EndedBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Scope(), p.Reason, dash(p.Actor), formatTime(&p.CreatedAt), ended)
	}
	_ = tw.Flush()
	return exitOK
}
