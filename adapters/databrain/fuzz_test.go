package databrain

import (
	"strings"
	"testing"
	"unicode/utf8"

	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

// FuzzParseError feeds Databrain's error-body parser arbitrary bodies: it must never panic; the
// code it returns is empty or a well-formed error code; the message is valid UTF-8, bounded, and
// leads with the code when there is one.
func FuzzParseError(f *testing.F) {
	for _, seed := range []string{
		`{"error":{"code":"CREDENTIAL_TEST_FAILED","message":"Connection test failed: could not connect to the datasource with the given credentials"}}`,
		`{"error":{"code":"INVALID_REQUEST_BODY","message":"credentials.port must be an integer"}}`,
		`{"error":{"code":"DATASOURCE_NOT_FOUND","message":"The specified datasource \"pg\" does not exist"}}`,
		`{"error":{"code":"INTERNAL_SERVER_ERROR","message":"Server error occurred"}}`,
		`{"error":"Invalid or missing service token"}`,
		`{"code":"SCHEMA_CACHE_FAILED","message":"Schema caching failed"}`,
		`{"code":404,"message":["a","b"]}`,
		`{"error":{"code":"lower_case","message":""}}`,
		`{"error":null,"code":null}`,
		`{"error":{"code":"X","message":{"nested":true}}}`,
		`[]`,
		`null`,
		`<html>502 Bad Gateway</html>`,
		"",
		"\xff\xfe\xc3",
		`{"error":{"code":"A","message":"` + strings.Repeat("ü", 400) + `"}}`,
		strings.Repeat("日本", 120),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg := parseError(body)
		if code != "" && !codeRE.MatchString(code) {
			t.Fatalf("code %q is not an error code", code)
		}
		if code != "" && !strings.HasPrefix(msg, code) {
			t.Fatalf("message %q does not lead with code %q", msg, code)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("not valid UTF-8: %q", msg)
		}
		if len(msg) > 64+2+maxMessage+3 {
			t.Fatalf("%d bytes: unbounded", len(msg))
		}
	})
}
