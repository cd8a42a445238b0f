package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/core"
)

// Exit codes of the client verbs, beside exitOK, exitFailure and exitConfig (main.go).
const (
	exitPartial     = 4 // the rotation ended partial: some targets succeeded, some did not
	exitFailed      = 5 // the rotation ended failed: no target succeeded
	exitBadInput    = 6 // a bad flag or argument, or the gateway refused the request (400, 404, 409, 413, 415, 422)
	exitUnreachable = 7 // the gateway could not be reached, or answered 5xx
	exitNotFinished = 8 // the rotation had not finished when the wait ended (or was interrupted)
	exitSuperseded  = 9 // a newer rotation of the source took every target over: nothing failed, nothing of this one is left to land
)

// clientUsage documents the client verbs in credsync --help (inserted before "credsync help").
const clientUsage = `  credsync rotate   --source S (--password-stdin [--type password] [--username U] | --from-file F
                    | --generate) [--targets a,b] [--idempotency-key K] [--wait 10m] [client flags]
        Push a new credential to every target of source S through a running gateway and follow
        it: live per-target progress (redrawn on a terminal, a line per change otherwise), then
        a table. The password is read from stdin (one trailing newline trimmed); --from-file
        reads a whole JSON credential ({"type": ..., ...}; - is stdin). Secrets are never taken
        on the command line. --generate: credsync makes the credential itself (a source with
        rotation:), stages it at the source, and retires the previous user once every target is
        verified. --wait 0 submits and returns (exit 0).
  credsync plan     --source S (--password-stdin ... | --from-file F | --generate) [--targets a,b]
                    [client flags]
        The dry run: per target, the request that would be sent, secrets redacted (with
        --generate: the user it would stage). Sends nothing.
  credsync status   ID [--wait] [--timeout 10m] [client flags]
        Show a rotation; --wait follows it until it ends.
  credsync sources  [client flags]
        The configured sources, their targets and each target's last outcome; for a source
        credsync rotates itself, the active user and when the next rotation is due.
%s
        Client flags: --addr URL (or CREDSYNC_ADDR; default http://127.0.0.1:8080),
        --token-file FILE (or CREDSYNC_TOKEN: the gateway API token), --output table|json.
  credsync check    --config FILE [--timeout 30s] [--output table|json]
        Reach every target's platform with its token, changing nothing, and report per target:
        ready, unauthorized, not_found, mismatch, unreachable or unknown (see README).`

// clientExitCodes is appended to the exit-code line of credsync --help.
const clientExitCodes = `
rotate, retry, status: 0 every target succeeded, 4 partial, 5 failed, 8 not finished when the wait
ended (--wait 0: 0), 9 superseded (a newer rotation took every target over); every client verb
(also plan, sources, rotations, audit, pause, resume, pauses: 0 the call worked): 6 bad input (a bad
flag, or the gateway answered 400/404/409/422), 7 gateway unreachable or 5xx, 1 anything else (401:
the gateway refused the token; 403: the token's scope does not cover it). check: 0 every target
ready or unknown, 1 otherwise, 3 invalid config, 6 a bad flag.`

// clientCommands are the verbs that talk to a running gateway (rotate, status, plan, sources)
// or check a config's platforms (check).
var clientCommands = map[string]func(args []string, stdin io.Reader, stdout, stderr io.Writer) int{
	"rotate":    func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).rotate(a) },
	"plan":      func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).plan(a) },
	"status":    func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).status(a) },
	"sources":   func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).sources(a) },
	"check":     func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).check(a) },
	"retry":     func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).retry(a) },
	"rotations": func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).rotations(a) },
	"audit":     func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).audit(a) },
	"pause":     func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).pause(a) },
	"resume":    func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).resume(a) },
	"pauses":    func(a []string, i io.Reader, o, e io.Writer) int { return newClientCmd(i, o, e).pauses(a) },
}

// maxCredentialBytes bounds a credential read from stdin or a file (the API takes 1 MiB bodies).
const maxCredentialBytes = 1 << 20

// clientCmd is what one client verb runs with.
type clientCmd struct {
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
	isTerminal func(io.Writer) bool
}

func newClientCmd(stdin io.Reader, stdout, stderr io.Writer) *clientCmd {
	return &clientCmd{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, isTerminal: isTerminal}
}

// isTerminal reports whether w is a character device (a terminal) that understands cursor moves.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	return os.Getenv("TERM") != "dumb"
}

// conn holds the flags every client verb shares.
type conn struct {
	addr      string
	tokenFile string
	output    string
	poll      time.Duration
}

func (cc *clientCmd) connFlags(fs *flag.FlagSet) *conn {
	c := &conn{}
	fs.StringVar(&c.addr, "addr", "", "gateway address (default $CREDSYNC_ADDR, else "+client.DefaultAddr+")")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the gateway API token (default: $CREDSYNC_TOKEN); never pass the token itself")
	fs.StringVar(&c.output, "output", "table", "table, or json: the API's JSON answer as one document")
	fs.DurationVar(&c.poll, "poll-interval", client.DefaultPollInterval, "how often to ask the gateway for progress while waiting")
	return c
}

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return fmt.Errorf("--output %q: table or json", output)
	}
	return nil
}

// client builds the API client from the flags and the environment.
func (cc *clientCmd) client(c *conn) (*client.Client, error) {
	if err := checkOutput(c.output); err != nil {
		return nil, err
	}
	addr := c.addr
	if addr == "" {
		addr = cc.getenv("CREDSYNC_ADDR")
	}
	var token string
	switch {
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("--token-file %s is empty", c.tokenFile)
		}
	case cc.getenv("CREDSYNC_TOKEN") != "":
		token = strings.TrimSpace(cc.getenv("CREDSYNC_TOKEN"))
	default:
		return nil, errors.New("no API token: set CREDSYNC_TOKEN or give --token-file FILE")
	}
	if c.poll <= 0 {
		return nil, fmt.Errorf("--poll-interval must be positive")
	}
	return client.New(addr, core.NewSecret(token), client.Options{PollInterval: c.poll, UserAgent: "credsync-cli"})
}

// refusedFlags are flags that would put a secret on the command line, with what to use instead.
var refusedFlags = map[string]string{
	"password":          "pipe it in with --password-stdin, or give a JSON credential with --from-file FILE (- for stdin)",
	"token":             "the gateway API token comes from CREDSYNC_TOKEN or --token-file; a credential of type token goes in --from-file",
	"api-token":         "the gateway API token comes from CREDSYNC_TOKEN or --token-file",
	"secret":            "give the credential with --from-file FILE (- for stdin)",
	"private-key":       "give the credential with --from-file FILE (- for stdin)",
	"passphrase":        "give the credential with --from-file FILE (- for stdin)",
	"client-secret":     "give the credential with --from-file FILE (- for stdin)",
	"secret-access-key": "give the credential with --from-file FILE (- for stdin)",
	"connection-string": "give the credential with --from-file FILE (- for stdin)",
	"credential":        "give the credential with --from-file FILE (- for stdin)",
}

// refuseSecretFlags reports a flag that would carry a secret on the command line (visible in ps
// and the shell history). It names the flag, never its value.
func refuseSecretFlags(verb string, args []string, stderr io.Writer) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if why, ok := refusedFlags[strings.ToLower(name)]; ok {
			fmt.Fprintf(stderr, "credsync %s: --%s is refused: a secret on the command line shows in ps and the shell history; %s\n", verb, name, why)
			return true
		}
	}
	return false
}

// parseArgs parses flags and returns the positional arguments, letting them sit before, between
// or after the flags. ok is false when the command should stop with code.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitBadInput, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func noArgs(verb string, pos []string, stderr io.Writer) bool {
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "credsync %s: unexpected argument %q\n", verb, pos[0])
		return false
	}
	return true
}

// credInput is how a credential is given: --password-stdin (with --type and --username) or
// --from-file.
type credInput struct {
	typ           string
	username      string
	passwordStdin bool
	fromFile      string
}

func credFlags(fs *flag.FlagSet) *credInput {
	ci := &credInput{}
	fs.StringVar(&ci.typ, "type", "", "credential type; with --password-stdin: password (the default)")
	fs.StringVar(&ci.username, "username", "", "with --password-stdin: also rotate the user name")
	fs.BoolVar(&ci.passwordStdin, "password-stdin", false, "read the password from stdin (one trailing newline is trimmed)")
	fs.StringVar(&ci.fromFile, "from-file", "", "read the whole JSON credential {\"type\": ..., ...} from this file (- for stdin)")
	return ci
}

// given reports whether any credential flag was set.
func (ci *credInput) given() bool {
	return ci.passwordStdin || ci.fromFile != "" || ci.typ != "" || ci.username != ""
}

// read returns the credential as a JSON object. Errors never quote what was read.
func (ci *credInput) read(stdin io.Reader) (json.RawMessage, error) {
	switch {
	case ci.passwordStdin && ci.fromFile != "":
		return nil, errors.New("give the credential once: --password-stdin or --from-file, not both")
	case ci.passwordStdin:
		if ci.typ != "" && ci.typ != string(core.TypePassword) {
			return nil, fmt.Errorf("--password-stdin reads a password, not a %s credential: give that with --from-file", ci.typ)
		}
		b, err := readBounded(stdin, "stdin")
		if err != nil {
			return nil, err
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return nil, errors.New("--password-stdin: stdin held no password")
		}
		cred := map[string]string{"type": string(core.TypePassword), "password": pw}
		if ci.username != "" {
			cred["username"] = ci.username
		}
		out, err := json.Marshal(cred)
		if err != nil {
			return nil, errors.New("encode the credential")
		}
		return out, nil
	case ci.fromFile != "":
		if ci.username != "" {
			return nil, errors.New("--username goes with --password-stdin; with --from-file put username in the JSON")
		}
		var b []byte
		var err error
		if ci.fromFile == "-" {
			b, err = readBounded(stdin, "stdin")
		} else {
			var f *os.File
			if f, err = os.Open(ci.fromFile); err != nil {
				return nil, fmt.Errorf("--from-file: %w", err)
			}
			b, err = readBounded(f, ci.fromFile)
			_ = f.Close()
		}
		if err != nil {
			return nil, err
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("--from-file %s: not a JSON object (the credential, such as {\"type\": \"password\", \"password\": ...})", ci.fromFile)
		}
		var typ string
		if err := json.Unmarshal(obj["type"], &typ); err != nil || typ == "" {
			return nil, fmt.Errorf("--from-file %s: the credential has no \"type\" (one of %s)", ci.fromFile, typeList())
		}
		if ci.typ != "" && ci.typ != typ {
			return nil, fmt.Errorf("--type %s but the credential in %s is of type %s", ci.typ, ci.fromFile, typ)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return nil, fmt.Errorf("--from-file %s: not valid JSON", ci.fromFile)
		}
		return buf.Bytes(), nil
	default:
		return nil, errors.New("give the credential: --password-stdin (the password on stdin) or --from-file FILE (a JSON credential; - for stdin)")
	}
}

func typeList() string {
	var names []string
	for _, t := range core.CredentialTypes() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

func readBounded(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxCredentialBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the credential from %s: %w", what, err)
	}
	if len(b) > maxCredentialBytes {
		return nil, fmt.Errorf("the credential in %s is over %d bytes", what, maxCredentialBytes)
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// exitForError maps an API or transport error to an exit code and prints it.
func (cc *clientCmd) fail(verb string, err error) int {
	fmt.Fprintf(cc.stderr, "credsync %s: %v\n", verb, err)
	switch {
	case client.IsBadInput(err):
		return exitBadInput
	case client.IsUnreachable(err):
		return exitUnreachable
	case client.IsForbidden(err):
		fmt.Fprintln(cc.stderr, "  the token's scope (server.api_tokens[].sources and actions) does not cover this: use a token that may")
		return exitFailure
	case client.IsUnauthorized(err):
		fmt.Fprintln(cc.stderr, "  the gateway refused the API token: check CREDSYNC_TOKEN or --token-file")
		return exitFailure
	default:
		return exitFailure
	}
}

// badInput prints a usage problem and returns exitBadInput.
func (cc *clientCmd) badInput(verb string, err error) int {
	fmt.Fprintf(cc.stderr, "credsync %s: %v\n", verb, err)
	return exitBadInput
}

// exitForRotation is the exit code a rotation's status calls for.
func exitForRotation(s core.RotationStatus) int {
	switch s {
	case core.RotationSucceeded:
		return exitOK
	case core.RotationPartial:
		return exitPartial
	case core.RotationFailed:
		return exitFailed
	case core.RotationSuperseded:
		return exitSuperseded
	default:
		return exitNotFinished
	}
}

// writeJSON writes one API document, indented, followed by a newline.
func writeJSON(w io.Writer, raw json.RawMessage) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, _ = w.Write(buf.Bytes())
}
