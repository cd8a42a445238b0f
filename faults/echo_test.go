package faults

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/core"
)

// echoEncodings are the ways a vendor quotes a submitted secret back in an error: each takes
// the secret and returns what the vendor's message holds.
var echoEncodings = []struct {
	name string
	enc  func(string) string
}{
	{"raw", func(s string) string { return s }},
	{"upper-case", strings.ToUpper},
	{"url-query", url.QueryEscape},
	{"url-path", url.PathEscape},
	{"html-escaped", html.EscapeString},
	{"base64", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }},
	{"base64url", func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }},
	{"hex", func(s string) string { return hex.EncodeToString([]byte(s)) }},
	{"hex-upper", func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }},
	{"first-12", func(s string) string { return s[:12] }},
	{"middle-9", func(s string) string { return s[10:19] }},
	{"base64-of-a-piece", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s[5:17])) }},
}

// leakedPiece is the independent checker: it returns the first 8-character piece of secret that
// out holds in any of the echo encodings, in any letter case ("" if none).
func leakedPiece(out, secret string) string {
	lower := strings.ToLower(out)
	for i := 0; i+8 <= len(secret); i++ {
		piece := secret[i : i+8]
		for _, e := range echoEncodings {
			if strings.HasPrefix(e.name, "first") || strings.HasPrefix(e.name, "middle") || e.name == "base64-of-a-piece" {
				continue // those cut the secret; the other forms of each piece cover them
			}
			f := strings.ToLower(e.enc(piece))
			if len(f) >= 8 && strings.Contains(lower, f) {
				return e.name + " of " + piece
			}
		}
	}
	return ""
}

// TestEchoedSecretInEveryEncodingReachesNoSurface: each vendor answers the write with a 422
// whose message quotes the secret in one encoding; afterwards no 8-character piece of it, in
// any encoding, is in the API's answers, the log, the store's files, /metrics, the audit trail
// or the status page.
func TestEchoedSecretInEveryEncodingReachesNoSurface(t *testing.T) {
	s := newStack(t, stackOptions{timeout: time.Second, maxAttempts: 1})
	var secrets []string
	for _, e := range echoEncodings {
		// Characters that URL, HTML and JSON encode differently, so that each form differs.
		secret := "Echo-" + e.name + `-q7L d2/Vx+9&Mw<4>Rk8"Tz=é`
		secrets = append(secrets, secret)
		msg := "password " + e.enc(secret) + " is not valid"
		b, err := json.Marshal(map[string]any{"success": false, "message": msg,
			"errors": []map[string]any{{"title": "Rejected", "detail": msg}},
			"error":  map[string]any{"code": "VALIDATION_ERROR", "message": msg}})
		require.NoError(t, err)
		body := string(b)
		s.setFault(func() fakeutil.Fault { return fakeutil.Status(http.StatusUnprocessableEntity, "", body, 0) })
		rot := s.rotate(t, secret)
		for _, tr := range rot.Targets {
			require.Equal(t, core.TargetFailed, tr.Status, "%s %s", e.name, tr.Name)
			require.NotNil(t, tr.Error, "%s %s", e.name, tr.Name)
			require.Equal(t, core.CodeRejected, tr.Error.Code, "%s %s: %s", e.name, tr.Name, tr.Error.Message)
			require.Contains(t, tr.Error.Message, "is not valid", "%s %s: the vendor's words around the secret survive", e.name, tr.Name)
		}
		s.call(t, http.MethodGet, "/v1/rotations/"+rot.ID, "", nil)
	}
	s.setFault(func() fakeutil.Fault { return nil })
	surfaces := map[string]string{}
	for what, path := range map[string]string{"the rotation list": "/v1/rotations", "the sources view": "/v1/sources",
		"the audit trail": "/v1/audit", "/metrics": "/metrics", "the status page": "/"} {
		code, _, b := s.call(t, http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, b)
		surfaces[what] = string(b)
	}
	require.Contains(t, surfaces["the status page"], "is not valid", "the status page shows the vendor's errors")
	surfaces["every API answer"] = s.allAnswers()
	surfaces["the store's files while running"] = readFiles(t, s.dir)
	require.NoError(t, s.stop())
	surfaces["the store's files after shutdown"] = readFiles(t, s.dir)
	surfaces["the store (through its API)"] = dumpStore(t, s.dbPath)
	surfaces["the gateway log"] = s.log.String()
	for what, out := range surfaces {
		require.NotEmpty(t, out, what)
		for _, secret := range secrets {
			if p := leakedPiece(out, secret); p != "" {
				t.Errorf("%s holds %s (secret %q)", what, p, secret)
			}
		}
	}
}
