package felt

import (
	"strings"
	"testing"
	"unicode/utf8"

	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

// FuzzErrorMessage feeds Felt's error-body parser arbitrary bodies: it must never panic, and the
// line it makes is valid UTF-8, bounded, and empty only for an empty body.
func FuzzErrorMessage(f *testing.F) {
	for _, seed := range []string{
		`{"errors":[{"title":"Unprocessable Entity","detail":"is invalid","source":{"pointer":"/credential/private_key"}}]}`,
		`{"errors":[{"title":"Unauthorized","detail":"Invalid or missing API token","source":{"header":"authorization"}}]}`,
		`{"errors":[{"title":"Not Found","detail":"Source not found","source":{"parameter":"source_id"}}]}`,
		`{"errors":[{"title":"Internal Server Error","detail":"Something went wrong","source":{}}]}`,
		`{"errors":[{"title":"A"},{"title":"B"},{"title":"C"},{"title":"D"},{"title":"E"},{"title":"F"},{"title":"G"}]}`,
		`{"errors":[{"detail":"x","source":{"pointer":"#/connection/headers/0~1value~0"}}]}`,
		`{"errors":[]}`,
		`{"errors":null}`,
		`{"errors":[{"title":7}]}`,
		`{"message":"not Felt's shape"}`,
		`<html><body><h1>502 Bad Gateway</h1></body></html>`,
		"",
		"   \n\t",
		"\xff\xfe invalid utf-8 \xc3",
		`{"errors":[{"title":"` + strings.Repeat("é", 200) + `"}]}`,
		strings.Repeat("日本", 120),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := errorMessage(body)
		if !utf8.ValidString(msg) {
			t.Fatalf("not valid UTF-8: %q", msg)
		}
		if len(msg) > 3000 {
			t.Fatalf("%d bytes: unbounded", len(msg))
		}
		if (msg == "") != (strings.TrimSpace(string(body)) == "") {
			t.Fatalf("message %q for body %q", msg, body)
		}
	})
}
