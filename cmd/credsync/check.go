package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb"
)

// checkRow is one target's check, as printed and as --output json writes it.
type checkRow struct {
	Source   string           `json:"source"`
	Target   string           `json:"target"`
	Platform string           `json:"platform"`
	Vendor   string           `json:"vendor"`
	Status   core.CheckStatus `json:"status"`
	Message  string           `json:"message"`
}

// checkReport is credsync check's --output json document.
type checkReport struct {
	OK      bool                     `json:"ok"` // every target ready or unknown: exit 0
	Counts  map[core.CheckStatus]int `json:"counts"`
	Targets []checkRow               `json:"targets"`
}

func (cc *clientCmd) check(args []string) int {
	const verb = "check"
	fs := newFlags(verb, cc.stderr, "Reach every target's platform with its token, and the database of every source credsync rotates itself, changing nothing, and report per target.")
	cfgPath := fs.String("config", "", "config file (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long all checks may take together")
	output := fs.String("output", "table", "table, or json: one document with every target's result")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if !noArgs(verb, pos, cc.stderr) {
		return exitBadInput
	}
	if *cfgPath == "" {
		return cc.badInput(verb, errors.New("--config FILE is required"))
	}
	if *timeout <= 0 {
		return cc.badInput(verb, errors.New("--timeout must be positive"))
	}
	if err := checkOutput(*output); err != nil {
		return cc.badInput(verb, err)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(cc.stderr, "credsync check: invalid config:", err)
		return exitConfig
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rows := append(runSourceChecks(ctx, cfg), runChecks(ctx, cfg, *timeout)...)

	rep := checkReport{OK: true, Counts: map[core.CheckStatus]int{}, Targets: rows}
	for _, r := range rows {
		rep.Counts[r.Status]++
		if r.Status != core.CheckReady && r.Status != core.CheckUnknown {
			rep.OK = false
		}
	}
	if *output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintln(cc.stderr, "credsync check: encode the report:", err)
			return exitFailure
		}
		fmt.Fprintln(cc.stdout, string(b))
	} else {
		tw := tabwriter.NewWriter(cc.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tTARGET\tPLATFORM\tVENDOR\tSTATUS\tMESSAGE")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Source, r.Target, r.Platform, r.Vendor, r.Status, r.Message)
		}
		_ = tw.Flush()
		fmt.Fprintf(cc.stdout, "%d check(s): %s.\n", len(rows), countLine(rep.Counts))
	}
	if !rep.OK {
		return exitFailure
	}
	return exitOK
}

func countLine(counts map[core.CheckStatus]int) string {
	order := []core.CheckStatus{core.CheckReady, core.CheckUnknown, core.CheckUnauthorized, core.CheckNotFound, core.CheckMismatch, core.CheckUnreachable}
	var parts []string
	for _, s := range order {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	// Statuses this binary does not know of yet, in a stable order.
	var extra []string
	for s, n := range counts {
		known := false
		for _, o := range order {
			known = known || o == s
		}
		if !known {
			extra = append(extra, fmt.Sprintf("%d %s", n, s))
		}
	}
	sort.Strings(extra)
	if parts = append(parts, extra...); len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// sourceDatabase is the target column of a source database's row.
const sourceDatabase = "(source database)"

// runSourceChecks checks the database of every source credsync rotates itself: the admin login
// works and every user (or key slot's user) exists and may log in. sourcedb has scrubbed every
// message of the admin DSN's password.
func runSourceChecks(ctx context.Context, cfg *config.Config) []checkRow {
	var rows []checkRow
	for _, s := range cfg.Sources {
		sr := s.Rotation
		if sr == nil {
			continue
		}
		r := checkRow{Source: s.Name, Target: sourceDatabase, Vendor: sr.Engine}
		err := func() error {
			db, err := sr.Open(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = db.Close() }()
			return db.Check(ctx, sr.Users...)
		}()
		r.Status, r.Message = sourceCheckResult(sr, err)
		rows = append(rows, r)
	}
	return rows
}

// sourceCheckResult turns a source database check's error into a status and a message.
func sourceCheckResult(sr *core.SourceRotation, err error) (core.CheckStatus, string) {
	switch {
	case err == nil:
		what := "users " + strings.Join(sr.Users, ", ")
		if sr.KeyUser != "" {
			what = "user " + sr.KeyUser
		}
		return core.CheckReady, "the admin login works; " + what + " exist"
	case errors.Is(err, sourcedb.ErrCannotCheck):
		return core.CheckUnknown, err.Error()
	case errors.Is(err, sourcedb.ErrAuth):
		return core.CheckUnauthorized, err.Error()
	case errors.Is(err, sourcedb.ErrNoUser):
		return core.CheckNotFound, err.Error()
	default:
		return core.CheckUnreachable, err.Error()
	}
}

// runChecks checks every target (core.CheckAll: the engine's bounded pool, each call through
// its platform's admission) and returns the results in config order. vendorhttp has scrubbed
// every answer of the platform's token.
func runChecks(ctx context.Context, cfg *config.Config, timeout time.Duration) []checkRow {
	var rows []checkRow
	for _, c := range core.CheckAll(ctx, cfg.Sources, cfg.Platforms) {
		r := checkRow{Source: c.Source, Target: c.Target, Platform: c.Platform, Vendor: c.Vendor, Status: c.Result.Status, Message: c.Result.Message}
		if r.Status == core.CheckUnreachable && ctx.Err() != nil && r.Message == "no answer before the check's time ran out" {
			r.Message = fmt.Sprintf("no answer within %s", timeout)
		}
		rows = append(rows, r)
	}
	return rows
}
