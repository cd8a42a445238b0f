package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/client/clienttest"
)

var rotationIDPattern = regexp.MustCompile(`rot_[0-9a-z]+`)

func TestRetryRotationsAndAudit(t *testing.T) {
	srv := startGateway(t)
	srv.Targets["gamma"].SetFail(true)
	withStdin(t, cliPassword+"\n")
	code, out, errOut := runCLI("rotate", "--source", "db", "--password-stdin", "--poll-interval", "20ms")
	require.Equal(t, exitPartial, code, "%s\n%s", out, errOut)
	id := rotationIDPattern.FindString(out)
	require.NotEmpty(t, id, out)

	code, out, _ = runCLI("rotations", "--source", "db")
	require.Equal(t, exitOK, code)
	require.Regexp(t, id+`\s+db\s+partial\s+2 succeeded, 1 failed`, out)
	code, out, _ = runCLI("rotations", "--status", "succeeded")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "No rotation.")
	code, _, errOut = runCLI("rotations", "--status", "weird")
	require.Equal(t, exitBadInput, code, "the gateway's 400")
	require.Contains(t, errOut, "status")
	code, _, _ = runCLI("rotations", "--limit", "0")
	require.Equal(t, exitBadInput, code)

	srv.Targets["gamma"].SetFail(false)
	code, out, errOut = runCLI("retry", id, "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "succeeded, 3 of 3 target(s) succeeded")
	require.Equal(t, 2, srv.Targets["gamma"].Sends(), "only the failed target was sent again")
	require.Equal(t, 1, srv.Targets["alpha"].Sends())
	code, _, errOut = runCLI("retry", id)
	require.Equal(t, exitBadInput, code, "nothing left to retry: the gateway's 409")
	require.Contains(t, errOut, "409")
	code, _, _ = runCLI("retry")
	require.Equal(t, exitBadInput, code)

	code, out, _ = runCLI("audit", "--rotation", id)
	require.Equal(t, exitOK, code)
	require.Regexp(t, `clienttest\s+rotation.retried\s+db\s+`+id, out)
	require.Regexp(t, `clienttest\s+rotation.submitted\s+db\s+`+id, out)
	require.Regexp(t, `\(gateway\)\s+target.finished\s+db\s+`+id+`\s+gamma\s+failed`, out)
	code, out, _ = runCLI("audit", "--source", "nope")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "No audit event.")
	requireNoSecret(t, out)
}

func TestPauseResumePauses(t *testing.T) {
	srv := startGateway(t)
	code, out, errOut := runCLI("pause", "--platform", "p2", "--reason", "vendor incident 7")
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "Paused platform p2")
	pauseID := regexp.MustCompile(`pause_[0-9a-f]+`).FindString(out)
	require.NotEmpty(t, pauseID)

	code, out, _ = runCLI("pauses")
	require.Equal(t, exitOK, code)
	require.Regexp(t, pauseID+`\s+platform p2\s+vendor incident 7\s+clienttest`, out)

	withStdin(t, cliPassword+"\n")
	code, out, _ = runCLI("rotate", "--source", "db", "--password-stdin", "--wait", "0")
	require.Equal(t, exitOK, code)
	id := rotationIDPattern.FindString(out)
	require.Eventually(t, func() bool {
		_, out, _ := runCLI("status", id)
		return regexp.MustCompile(`gamma\s+p2\s+stand-in\s+pending \(paused\)`).MatchString(out)
	}, 5e9, 2e7, "status shows the held target")
	require.Zero(t, srv.Targets["gamma"].Sends())

	code, out, _ = runCLI("resume", pauseID)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "Resumed platform p2")
	code, out, errOut = runCLI("status", id, "--wait", "--poll-interval", "20ms")
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	require.Equal(t, 1, srv.Targets["gamma"].Sends())
	code, out, _ = runCLI("pauses")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "No pause")
	code, out, _ = runCLI("pauses", "--all")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, pauseID)
	code, _, errOut = runCLI("resume", pauseID)
	require.Equal(t, exitBadInput, code, "ended already: 404")
	require.Contains(t, errOut, "404")

	for _, bad := range [][]string{
		{"pause", "--reason", "x"},                              // what?
		{"pause", "--all", "--platform", "p2", "--reason", "x"}, // both
		{"pause", "--all"},                                      // why?
		{"pause", "--platform", "nope", "--reason", "x"},        // the gateway's 422
		{"resume"},
	} {
		code, _, errOut := runCLI(bad...)
		require.Equal(t, exitBadInput, code, "%v: %s", bad, errOut)
	}

	t.Setenv("CREDSYNC_TOKEN", clienttest.ReaderToken)
	code, _, errOut = runCLI("pause", "--all", "--reason", "x")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "403")
	require.Contains(t, errOut, "scope", "says why")
	code, _, _ = runCLI("rotations")
	require.Equal(t, exitOK, code, "a reader reads")
}
