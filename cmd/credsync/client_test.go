package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/client/clienttest"
	"github.com/credsync/credsync/core"
)

const cliPassword = "Cl1-s3cret-password"

// testStdin is what runCLI hands the verbs as standard input (set by withStdin).
var testStdin = ""

// withStdin feeds the client verbs' stdin for one test.
func withStdin(t *testing.T, s string) {
	t.Helper()
	prev := testStdin
	testStdin = s
	t.Cleanup(func() { testStdin = prev })
}

// gateway starts the real API in front of stand-in targets alpha, beta (platform p1) and gamma
// (p2) of source "db", and points the client verbs at it through the environment.
func startGateway(t *testing.T) *clienttest.Server {
	t.Helper()
	srv := clienttest.New(t)
	t.Setenv("CREDSYNC_ADDR", srv.URL)
	t.Setenv("CREDSYNC_TOKEN", clienttest.Token)
	return srv
}

// runCLI runs credsync in-process and returns the exit code, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runWithStdin(args, strings.NewReader(testStdin), &out, &errb)
	return code, out.String(), errb.String()
}

func requireNoSecret(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		require.NotContains(t, o, cliPassword)
		require.NotContains(t, o, clienttest.Token)
	}
}

func TestHelpListsClientVerbs(t *testing.T) {
	code, out, _ := runCLI("--help")
	require.Equal(t, exitOK, code)
	for _, s := range []string{"credsync rotate", "--password-stdin", "--from-file", "credsync plan", "credsync status", "credsync sources",
		"credsync check", "CREDSYNC_ADDR", "CREDSYNC_TOKEN", "4 partial", "5 failed", "6 bad input", "7 gateway unreachable", "8 not finished"} {
		require.Contains(t, out, s)
	}
	for _, verb := range []string{"rotate", "plan", "status", "sources", "check"} {
		code, _, errOut := runCLI(verb, "--help")
		require.Equal(t, exitOK, code, verb)
		require.Contains(t, errOut, "Usage: credsync "+verb)
	}
}

func TestRotatePasswordStdin(t *testing.T) {
	srv := startGateway(t)
	withStdin(t, cliPassword+"\n")
	code, out, errOut := runCLI("rotate", "--source", "db", "--type", "password", "--password-stdin", "--username", "svc_new", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "succeeded, 3 of 3 target(s) succeeded")
	require.Regexp(t, `alpha\s+p1\s+stand-in\s+succeeded\s+true\s+1`, out)
	requireNoSecret(t, out, errOut)

	got := srv.Targets["alpha"].LastCredential()
	require.Equal(t, core.TypePassword, got.Type)
	require.Equal(t, cliPassword, got.Password.Reveal(), "one trailing newline is trimmed, nothing else")
	require.Equal(t, "svc_new", got.Username)

	// Only the one trailing newline goes: a password may end in spaces or \r\n is one newline.
	withStdin(t, "ends with space \r\n")
	code, _, errOut = runCLI("rotate", "--source", "db", "--password-stdin", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "ends with space ", srv.Targets["beta"].LastCredential().Password.Reveal())
}

func TestRotateFromFile(t *testing.T) {
	srv := startGateway(t)
	path := filepath.Join(t.TempDir(), "cred.json")
	require.NoError(t, os.WriteFile(path, []byte("{\n  \"type\": \"token\",\n  \"token\": \"tok-"+cliPassword+"\"\n}\n"), 0o600))
	code, out, errOut := runCLI("rotate", "--source", "db", "--from-file", path, "--targets", "alpha,gamma", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "2 of 2 target(s) succeeded")
	require.Equal(t, "tok-"+cliPassword, srv.Targets["gamma"].LastCredential().Token.Reveal())
	require.Zero(t, srv.Targets["beta"].Sends())
	requireNoSecret(t, out, errOut)

	// --from-file - reads stdin.
	withStdin(t, `{"type":"password","password":"`+cliPassword+`"}`)
	code, _, errOut = runCLI("rotate", "--source", "db", "--from-file", "-", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, cliPassword, srv.Targets["beta"].LastCredential().Password.Reveal())
}

func TestRotateExitCodes(t *testing.T) {
	srv := startGateway(t)

	srv.Targets["beta"].SetFail(true)
	withStdin(t, cliPassword)
	code, out, errOut := runCLI("rotate", "--source", "db", "--password-stdin", "--poll-interval", "20ms")
	require.Equal(t, exitPartial, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "partial, 2 of 3 target(s) succeeded")
	require.Contains(t, out, "rejected: HTTP 400: the vendor refused the credential")

	withStdin(t, cliPassword)
	code, out, _ = runCLI("rotate", "--source", "db", "--password-stdin", "--targets", "beta", "--poll-interval", "20ms")
	require.Equal(t, exitFailed, code, out)
	require.Contains(t, out, "failed, 0 of 1 target(s) succeeded")

	// The gateway refuses the input: unknown source (404), unknown target or type (422).
	for _, args := range [][]string{
		{"--source", "nope", "--password-stdin"},
		{"--source", "db", "--targets", "zeta", "--password-stdin"},
		{"--source", "db", "--from-file", "-"},
	} {
		withStdin(t, `{"type":"aws_assume_role","role_arn":"a","role_session_name":"b"}`)
		if args[len(args)-1] == "--password-stdin" {
			withStdin(t, cliPassword)
		}
		code, out, errOut = runCLI(append([]string{"rotate"}, args...)...)
		require.Equal(t, exitBadInput, code, "%v\nstdout:\n%s\nstderr:\n%s", args, out, errOut)
		require.Regexp(t, `HTTP (404|422)`, errOut)
		requireNoSecret(t, out, errOut)
	}
}

func TestRotateBadFlagsAndSecretsOnTheCommandLine(t *testing.T) {
	startGateway(t)
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--source", "db", "--password", cliPassword}, "--password is refused"},
		{[]string{"--source", "db", "--password=" + cliPassword}, "--password is refused"},
		{[]string{"--source", "db", "-token", cliPassword}, "--token is refused"},
		{[]string{"--source", "db", "--private-key=" + cliPassword}, "--private-key is refused"},
		{[]string{"--source", "db"}, "give the credential"},
		{[]string{"--password-stdin"}, "--source is required"},
		{[]string{"--source", "db", "--password-stdin", "--from-file", "x"}, "not both"},
		{[]string{"--source", "db", "--password-stdin", "--type", "token"}, "--password-stdin reads a password"},
		{[]string{"--source", "db", "--frobnicate"}, "flag provided but not defined"},
		{[]string{"--source", "db", "--password-stdin", "--output", "yaml"}, "--output \"yaml\""},
		{[]string{"--source", "db", "--password-stdin", "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		withStdin(t, cliPassword)
		code, out, errOut := runCLI(append([]string{"rotate"}, c.args...)...)
		require.Equal(t, exitBadInput, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.msg, "%v", c.args)
		requireNoSecret(t, out, errOut)
	}
	withStdin(t, "")
	code, _, errOut := runCLI("rotate", "--source", "db", "--password-stdin")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "stdin held no password")

	withStdin(t, `{"password": "`+cliPassword+`"}`)
	code, _, errOut = runCLI("plan", "--source", "db", "--from-file", "-")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, `has no "type"`)
	requireNoSecret(t, errOut)

	withStdin(t, `not json `+cliPassword)
	code, _, errOut = runCLI("plan", "--source", "db", "--from-file", "-")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "not a JSON object")
	requireNoSecret(t, errOut)
}

func TestTokenSources(t *testing.T) {
	srv := clienttest.New(t)
	t.Setenv("CREDSYNC_ADDR", srv.URL)
	t.Setenv("CREDSYNC_TOKEN", "")
	code, _, errOut := runCLI("sources")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "no API token")

	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(clienttest.Token+"\n"), 0o600))
	code, out, errOut := runCLI("sources", "--token-file", tokenFile)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "never rotated")

	// A wrong token: exit 1, and the token is not printed.
	t.Setenv("CREDSYNC_TOKEN", "wrong-api-token-0123456789")
	code, out, errOut = runCLI("sources", "--addr", srv.URL)
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "HTTP 401")
	require.Contains(t, errOut, "refused the API token")
	require.NotContains(t, out+errOut, "wrong-api-token-0123456789")
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("CREDSYNC_TOKEN", clienttest.Token)
	t.Setenv("CREDSYNC_ADDR", "http://"+addr)

	withStdin(t, cliPassword)
	code, out, errOut := runCLI("rotate", "--source", "db", "--password-stdin")
	require.Equal(t, exitUnreachable, code, errOut)
	require.Contains(t, errOut, "gateway unreachable")
	requireNoSecret(t, out, errOut)
	for _, args := range [][]string{{"sources"}, {"status", "some-id"}, {"sources", "--addr", addr}} {
		code, _, errOut = runCLI(args...)
		require.Equal(t, exitUnreachable, code, "%v: %s", args, errOut)
	}
}

func TestStatusAndWait(t *testing.T) {
	srv := startGateway(t)
	release := srv.Targets["gamma"].Hold()

	// --wait 0: submitted is what was asked: exit 0, though it has not finished.
	withStdin(t, cliPassword)
	code, out, errOut := runCLI("rotate", "--source", "db", "--password-stdin", "--wait", "0", "--output", "json")
	require.Equal(t, exitOK, code, errOut)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal([]byte(out), &rot), out)
	require.NotEmpty(t, rot.ID)

	code, out, _ = runCLI("status", rot.ID)
	require.Equal(t, exitNotFinished, code)
	require.Contains(t, out, "Follow it: credsync status "+rot.ID+" --wait")

	// The wait runs out while gamma is held.
	code, out, errOut = runCLI("status", rot.ID, "--wait", "--timeout", "200ms", "--poll-interval", "20ms")
	require.Equal(t, exitNotFinished, code)
	require.Contains(t, errOut, "had not finished after 200ms")
	require.Regexp(t, `gamma\s+p2\s+stand-in\s+(pending|running)`, out)

	// status ID --wait follows it to the end, a line per change (stdout is not a terminal).
	go func() {
		time.Sleep(100 * time.Millisecond)
		release()
	}()
	code, out, errOut = runCLI("status", "--wait", rot.ID, "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "Rotation "+rot.ID+" of source db: 3 target(s)")
	require.Regexp(t, `s  gamma\s+running`, out)
	require.Regexp(t, `s  gamma\s+succeeded, verified`, out)
	require.NotContains(t, out, "\x1b[", "no cursor moves when stdout is not a terminal")
	require.Contains(t, out, "3 of 3 target(s) succeeded")

	code, _, errOut = runCLI("status")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "give one rotation id")
	code, _, _ = runCLI("status", "no-such-rotation")
	require.Equal(t, exitBadInput, code, "404")
}

func TestOutputJSON(t *testing.T) {
	startGateway(t)
	withStdin(t, cliPassword)
	code, out, errOut := runCLI("rotate", "--source", "db", "--password-stdin", "--output", "json", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, errOut)
	var rot map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rot), "rotate --output json is one JSON document:\n%s", out)
	require.Equal(t, "succeeded", rot["status"])
	id := rot["id"].(string)
	requireNoSecret(t, out)

	code, out, _ = runCLI("status", id, "--output", "json")
	require.Equal(t, exitOK, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rot))
	require.Equal(t, id, rot["id"])

	withStdin(t, cliPassword)
	code, out, _ = runCLI("plan", "--source", "db", "--password-stdin", "--output", "json")
	require.Equal(t, exitOK, code)
	var plan struct {
		DryRun   bool             `json:"dry_run"`
		Requests []map[string]any `json:"requests"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan))
	require.True(t, plan.DryRun)
	require.Len(t, plan.Requests, 3)
	require.Contains(t, out, core.Redacted)
	requireNoSecret(t, out)

	code, out, _ = runCLI("sources", "--output", "json")
	require.Equal(t, exitOK, code)
	var src struct {
		Sources []struct {
			Name    string           `json:"name"`
			Targets []map[string]any `json:"targets"`
		} `json:"sources"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &src))
	require.Equal(t, "db", src.Sources[0].Name)
	require.Len(t, src.Sources[0].Targets, 3)
}

func TestPlanAndSourcesTables(t *testing.T) {
	srv := startGateway(t)
	withStdin(t, cliPassword+"\n")
	code, out, errOut := runCLI("plan", "--source", "db", "--password-stdin", "--username", "svc")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "Dry run of source db: 3 request(s), nothing sent.")
	require.Regexp(t, `alpha\s+p1\s+stand-in\s+PATCH /credentials\s+\{"password":"\[REDACTED\]","username":"svc"\}`, out)
	requireNoSecret(t, out, errOut)
	for _, a := range srv.Targets {
		require.Zero(t, a.Sends())
	}

	withStdin(t, cliPassword)
	code, _, _ = runCLI("rotate", "--source", "db", "--password-stdin", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code)
	code, out, _ = runCLI("sources")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "SOURCE")
	require.Regexp(t, `db\s+gamma\s+p2\s+stand-in\s+password,token\s+\S+\s+succeeded \(verified\)`, out)
}

func TestProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true)
	mk := func(st ...core.TargetStatus) *client.Rotation {
		r := &client.Rotation{}
		r.ID, r.Source, r.Status = "r1", "db", core.RotationRunning
		for i, s := range st {
			r.Targets = append(r.Targets, core.TargetResult{Name: string(rune('a' + i)), Vendor: "felt", Status: s})
		}
		return r
	}
	p.update(mk(core.TargetPending, core.TargetRunning))
	first := buf.String()
	require.Contains(t, first, "Rotation r1 of source db: 2 target(s)")
	require.NotContains(t, first, "\x1b[3A", "nothing to redraw yet")
	p.update(mk(core.TargetSucceeded, core.TargetFailed))
	second := strings.TrimPrefix(buf.String(), first)
	require.True(t, strings.HasPrefix(second, "\x1b[3A"), "the block is redrawn in place: %q", second)
	require.Contains(t, second, "\x1b[2K  ✓ a")
	require.Contains(t, second, "\x1b[2K  ✗ b")
	p.done()
	require.True(t, strings.HasSuffix(buf.String(), "\x1b[3A\x1b[J"), "the live block is cleared for the table")
}

func TestExitForEveryRotationStatus(t *testing.T) {
	want := map[core.RotationStatus]int{
		core.RotationSucceeded: exitOK, core.RotationPartial: exitPartial, core.RotationFailed: exitFailed,
		core.RotationSuperseded: exitSuperseded, core.RotationPending: exitNotFinished, core.RotationRunning: exitNotFinished,
	}
	for st, code := range want {
		require.Equal(t, code, exitForRotation(st), "%s", st)
	}
	require.NotEqual(t, exitFailed, exitForRotation(core.RotationSuperseded), "superseded is no failure: no alert")
}
