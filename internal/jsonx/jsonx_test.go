package jsonx_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/internal/jsonx"
)

func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, path, problem string
	}{
		{"invalid UTF-8 in a value", "{\"credential\":{\"password\":\"pw-\xff-x\"}}", "credential.password", "invalid UTF-8"},
		{"invalid UTF-8 in a key", "{\"cred\xc3\":1}", "cred\ufffd", "invalid UTF-8"},
		{"lone high surrogate", `{"credential":{"password":"pw-\ud800-x"}}`, "credential.password", "lone UTF-16 surrogate"},
		{"lone low surrogate", `{"password":"\udc00"}`, "password", "lone UTF-16 surrogate"},
		{"high then no low", `{"password":"\ud83d\u0041"}`, "password", "lone UTF-16 surrogate"},
		{"high at the end", `{"password":"x\ud83d"}`, "password", "lone UTF-16 surrogate"},
		{"duplicate at the top", `{"source":"a","source":"b"}`, "source", "given twice"},
		{"duplicate nested", `{"credential":{"type":"password","password":"a","password":"b"}}`, "credential.password", "given twice"},
		{"duplicate in a list of objects", `{"headers":[{"name":"a"},{"name":"b","value":"1","value":"2"}]}`, "headers[1].value", "given twice"},
		{"surrogate deep in a list", `{"a":[1,[2,"\udfff"]]}`, "a[1][1]", "lone UTF-16 surrogate"},
		{"not JSON", `{"a":`, "", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := jsonx.Check([]byte(tc.body))
			var je *jsonx.Error
			require.ErrorAs(t, err, &je)
			require.Equal(t, tc.path, je.Path)
			require.Contains(t, je.Problem, tc.problem)
			require.NotContains(t, err.Error(), "pw-", "the error names where, never the value")
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	for _, body := range []string{
		`{"password":"\ud83d\ude00 a surrogate pair is a character"}`,
		`{"password":"😀 é ✓"}`,
		`{"a":"x","A":"y"}`,
		`{"list":[{"name":"a"},{"name":"a"}]}`,
		`{"a":{"k":1},"b":{"k":1}}`,
		`{"esc":"\\u0041 is an escaped backslash, then u0041","q":"\"\\\/"}`,
		`[1,2,{"x":[]}]`,
		`"just a string"`,
	} {
		require.NoError(t, jsonx.Check([]byte(body)), body)
	}
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type request struct {
	Source  string          `json:"source"`
	Targets []string        `json:"targets"`
	Raw     json.RawMessage `json:"credential"`
	Headers []header        `json:"headers"`
	Meta    map[string]any  `json:"meta"`
	DryRun  bool            `json:"dry_run"`
}

func TestDecodeKeysAreCaseSensitive(t *testing.T) {
	var r request
	require.NoError(t, jsonx.Decode([]byte(`{"source":"s","headers":[{"name":"a","value":"b"}],"meta":{"Any":1},"credential":{"Free":1}}`), &r))
	require.Equal(t, "s", r.Source)
	for body, path := range map[string]string{
		`{"SOURCE":"s"}`:                 "SOURCE",
		`{"Source":"s"}`:                 "Source",
		`{"headers":[{"Name":"a"}]}`:     "headers[0].Name",
		`{"dry_Run":true}`:               "dry_Run",
		`{"source":"s","unknown":1}`:     "unknown",
		`{"headers":[{},{"VALUE":"x"}]}`: "headers[1].VALUE",
	} {
		var r request
		err := jsonx.Decode([]byte(body), &r)
		var je *jsonx.Error
		require.ErrorAs(t, err, &je, body)
		require.Equal(t, path, je.Path, body)
		require.True(t, strings.Contains(je.Problem, "case-sensitive"), body)
	}
	err := jsonx.Decode([]byte(`{"dry_run":"yes"}`), &r)
	require.ErrorContains(t, err, "dry_run")
	require.ErrorContains(t, err, "true or false")
}

// FuzzCheck: Check never panics; what it accepts decodes, holds valid UTF-8 only, and has no key
// twice in an object at the top.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`, `[{"x":[{"y":"\u00e9"}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if jsonx.Check(body) != nil {
			return
		}
		var v any
		require.NoError(t, json.Unmarshal(body, &v), "accepted but does not decode")
		require.True(t, utf8.Valid(body), "accepted invalid UTF-8")
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil {
			seen := map[string]bool{}
			dec := json.NewDecoder(bytes.NewReader(body))
			_, _ = dec.Token()
			for dec.More() {
				k, err := dec.Token()
				require.NoError(t, err)
				key := k.(string)
				require.False(t, seen[key], "accepted a duplicated key %q", key)
				seen[key] = true
				var skip json.RawMessage
				require.NoError(t, dec.Decode(&skip))
			}
		}
	})
}
