// Command credsync is the credential-sync gateway: it serves the REST API, validates config, and
// runs a self-contained demo against fake vendors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and something failed (demo: a target did not succeed)
	exitUsage   = 2 // bad flags or arguments
	exitConfig  = 3 // the config file is invalid
)

const usage = `credsync — push one rotated credential to every platform that holds a copy.

Usage:
  credsync serve    --config FILE [--log-level info] [--log-format json] [--shutdown-grace 30s]
                    [--drain-delay 5s] [--allow-no-encryption-key]
        Run the gateway: REST API under /v1, /healthz, /readyz. Unfinished rotations (a crash, a
        restart) resume at start. Stored credentials are sealed with CREDSYNC_ENCRYPTION_KEY
        (base64 of 32 bytes; older keys that still open: CREDSYNC_ENCRYPTION_OLD_KEYS, comma-separated)
        or store.encryption_key_file. A config validate refuses is refused with the same messages
        and exit 3, before the store is opened or the address listened on. Logs go to stderr, one
        JSON object a line (--log-format console: for people). On SIGTERM or SIGINT, /readyz
        answers 503 for --drain-delay while everything still serves (a second signal ends the
        wait), then the listener closes and running rotations get --shutdown-grace to finish.
        SIGHUP reloads FILE: checked as at start; if accepted, the new config serves on the same
        socket and the old one finishes its requests and rotations (--shutdown-grace); if refused
        (or it changes server.listen or the store), the running config stays and the log says why.
  credsync validate --config FILE [--allow-no-encryption-key]
        Load and validate FILE (env expansion, strict keys, every target's vendor rules), then check
        what serve checks before it starts: the listen address, the encryption key (from the same
        environment), the TLS files, and that the store opens (the SQLite file's directory exists
        and is writable, an existing database file is writable, a PostgreSQL DSN parses; nothing is
        created, nothing is connected to). Print every problem found, or a summary of sources and
        targets; exit 0 when valid, 3 when not.
  credsync demo     [--listen 127.0.0.1:8080] [--once] [--keep] [--log-file F]
        Start fake Felt, Databrain and RiverGen servers on loopback and a gateway (on an embedded
        SQLite store in a temporary directory) in front of them,
        rotate one credential of each supported type through all three, print a per-target table,
        then keep serving and print the export lines that point the CLI at it. --once exits after
        the table: 0 when every target succeeded, 1 otherwise. The temp directory (config, store,
        log) is removed on exit unless --keep.
%s
  credsync healthcheck [--addr URL] [--ready] [--timeout 5s] [--insecure]
        GET /healthz (--ready: /readyz) of a running gateway at --addr (or CREDSYNC_ADDR; default
        http://127.0.0.1:8080): exit 0 when it answers 200, 1 otherwise. The container image's
        HEALTHCHECK (the image has no shell and no curl).
  credsync version
        Print the version, commit, build date and Go version (also: credsync --version).
  credsync help
        Show this text. "credsync COMMAND --help" shows a command's flags.

Environment: ${VAR} references in the config file are read from the environment; a missing one
is an error naming it.

Exit codes: 0 ok, 1 failure, 2 usage, 3 invalid config.%s
`

// usageText is the usage with the client verbs' part (client.go) filled in.
func usageText() string {
	return fmt.Sprintf(usage, fmt.Sprintf(clientUsage, opsUsage), clientExitCodes)
}

func main() {
	os.Exit(runWithStdin(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is runWithStdin with an empty standard input.
func run(args []string, stdout, stderr io.Writer) int {
	return runWithStdin(args, strings.NewReader(""), stdout, stderr)
}

// runWithStdin runs one command; the client verbs read secrets from stdin.
func runWithStdin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText())
		return exitOK
	case "version", "--version", "-version":
		return cmdVersion(args[1:], stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(args[1:], stdout, stderr)
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	default:
		if cmd, ok := clientCommands[args[0]]; ok {
			return cmd(args[1:], stdin, stdout, stderr)
		}
		fmt.Fprintf(stderr, "credsync: unknown command %q\n\n%s", args[0], usageText())
		return exitUsage
	}
}

func newFlags(name string, stderr io.Writer, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: credsync %s [flags]\n  %s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse returns an exit code and false when the command should stop (help or bad flags).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// newLogger logs at level to w: one JSON object a line (format json, for log collectors) or
// aligned text (console, for people). Durations carry their unit ("30s"); the request and
// rotation lines give took_ms as a number.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: debug, info, warn or error", level)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.TimeKey, cfg.EncodeTime = "ts", zapcore.ISO8601TimeEncoder
	cfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format %q: json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

func cmdServe(args []string, _, stderr io.Writer) int {
	fs := newFlags("serve", stderr, "Run the gateway.")
	cfgPath := fs.String("config", "", "config file (required)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "json", "log format: json (one object a line) or console (for people)")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "on SIGTERM/SIGINT, how long running rotations may finish once the listener is closed; the rest resume at the next start")
	drainDelay := fs.Duration("drain-delay", 5*time.Second, "on SIGTERM/SIGINT, how long to go on serving with /readyz answering 503 before the listener closes, so load balancers stop sending (0: close at once)")
	noKey := fs.Bool("allow-no-encryption-key", false, "run a durable store without CREDSYNC_ENCRYPTION_KEY: no credential is stored, interrupted rotations end failed (code interrupted)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "credsync serve: --config FILE is required")
		return exitUsage
	}
	if *drainDelay < 0 {
		fmt.Fprintln(stderr, "credsync serve: --drain-delay must not be negative")
		return exitUsage
	}
	log, err := newLogger(*level, *format, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "credsync serve:", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	ctx, endDrain, reload, stop := serveSignals(log)
	defer stop()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "credsync serve: invalid config:", err)
		return exitConfig
	}
	sv := &server{path: *cfgPath, noKey: *noKey, grace: *grace, drainDelay: *drainDelay, endDrain: endDrain, log: log}
	gw, ed, err := sv.build(ctx, cfg)
	if err != nil {
		if printProblems(stderr, "credsync serve: invalid config:", *cfgPath, err) {
			return exitConfig
		}
		fmt.Fprintln(stderr, "credsync serve:", err)
		return exitFailure
	}
	// Parsing a large config leaves garbage several times the size of what it built (the YAML
	// trees): hand it back to the system now rather than carrying it in the resident size.
	debug.FreeOSMemory()
	l, err := net.Listen("tcp", cfg.File.Server.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "credsync serve: listen on %s: %v (change server.listen)\n", cfg.File.Server.Listen, err)
		return exitFailure
	}
	if err := sv.run(ctx, l, cfg, gw, ed, reload); err != nil {
		log.Error("gateway stopped with an error", zap.Error(err))
		return exitFailure
	}
	return exitOK
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr, "Validate a config file and everything serve checks before it starts.")
	cfgPath := fs.String("config", "", "config file (required)")
	noKey := fs.Bool("allow-no-encryption-key", false, "accept a durable store without an encryption key, as serve --allow-no-encryption-key does")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "credsync validate: --config FILE is required")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "invalid:", err)
		return exitConfig
	}
	if err := gateway.Preflight(cfg, gatewayOptions(cfg, *noKey)); err != nil {
		if !printProblems(stderr, "invalid:", *cfgPath, err) {
			fmt.Fprintln(stderr, "invalid:", err)
		}
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s is valid: %d platform(s), %d source(s)\n", *cfgPath, len(cfg.Platforms), len(cfg.Sources))
	for _, s := range cfg.Sources {
		fmt.Fprintf(stdout, "  source %s\n", s.Name)
		for _, t := range s.Targets {
			fmt.Fprintf(stdout, "    %-28s %-10s on %-12s accepts %v\n", t.Name, t.Vendor, t.Platform, t.Adapter.Accepts())
		}
	}
	return exitOK
}

// gatewayOptions are what serve runs the gateway with and validate checks: the encryption keys
// from the environment and the config, and --allow-no-encryption-key.
func gatewayOptions(cfg *config.Config, allowNoKey bool) gateway.Options {
	return gateway.Options{AllowNoKey: allowNoKey, Keys: gateway.KeysFromEnv(os.Getenv, cfg.File.Store.EncryptionKeyFile)}
}

// printProblems prints gateway.Preflight's problems one a line, as serve and validate both do,
// and reports whether err was Preflight's (a *multierror.Error: see gateway.New).
func printProblems(w io.Writer, prefix, cfgPath string, err error) bool {
	var problems *multierror.Error
	if !errors.As(err, &problems) {
		return false
	}
	n := len(problems.Errors)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "%s %s: %d problem%s:\n", prefix, cfgPath, n, plural)
	for _, e := range problems.Errors {
		fmt.Fprintf(w, "  - %v\n", e)
	}
	return true
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr, "Rotate credentials through fake vendors, end to end.")
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address (127.0.0.1:0 picks a free port)")
	once := fs.Bool("once", false, "exit after the table: 0 when every target succeeded, 1 otherwise")
	logFile := fs.String("log-file", "", "write the gateway's JSON log here (default: a file in the temp directory)")
	keep := fs.Bool("keep", false, "keep the temp directory (config, SQLite store, log) after exit; by default it is removed")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ok, err := demo.Run(ctx, demo.Options{Listen: *listen, Once: *once, LogFile: *logFile, Keep: *keep, Out: stdout})
	if err != nil {
		fmt.Fprintln(stderr, "credsync demo:", err)
		return exitFailure
	}
	if !ok {
		return exitFailure
	}
	return exitOK
}
