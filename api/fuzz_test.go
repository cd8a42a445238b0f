package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
	"github.com/credsync/credsync/internal/keyring"
	"github.com/credsync/credsync/internal/standin"
	"github.com/credsync/credsync/store/memstore"
)

const fuzzToken = "fuzz-api-token-0123456789"

func fuzzHandler(f *testing.F) http.Handler {
	kr, err := keyring.Generate()
	if err != nil {
		f.Fatal(err)
	}
	eng, err := core.NewEngine(core.EngineConfig{
		Sealer:    kr,
		Platforms: []core.Platform{{Name: "p", Vendor: "fake", MaxAttempts: 1}},
		Sources: []*core.Source{{Name: "db", Targets: []*core.Target{
			{Name: "a", Platform: "p", Vendor: "fake", Adapter: standin.New(core.TypePassword)},
			{Name: "b", Platform: "p", Vendor: "fake", Adapter: standin.New(core.TypePassword, core.TypeToken)},
		}}},
		Store: memstore.New(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return api.New(eng, []api.Token{{Name: "fuzz", Token: core.NewSecret(fuzzToken)}}, nil).Handler()
}

// distinctive reports whether s is a secret that cannot appear in an answer by coincidence: long,
// with letters and digits.
func distinctive(s string) bool {
	return len(s) >= 16 && strings.ContainsFunc(s, unicode.IsLetter) && strings.ContainsFunc(s, unicode.IsDigit)
}

// FuzzRotationRequest drives POST /v1/rotations through the real handler with arbitrary bodies,
// wait values and Idempotency-Keys. The API must never panic nor answer 5xx; every answer is
// JSON, every refusal is the error envelope; and no secret of the submitted credential comes back.
func FuzzRotationRequest(f *testing.F) {
	h := fuzzHandler(f)
	for _, seed := range []struct{ body, wait, key string }{
		{`{"source":"db","credential":{"type":"password","password":"Pw-0123456789abcdef"}}`, "", ""},
		{`{"source":"db","credential":{"type":"password","username":"svc","password":"Pw-0123456789abcdef"},"targets":["a"]}`, "5s", "key-1"},
		{`{"source":"db","credential":{"type":"password","password":"Pw-0123456789abcdef"},"dry_run":true}`, "", ""},
		{`{"source":"db","credential":{"type":"token","token":"tok-0123456789abcdef"},"targets":["b"]}`, "1", ""},
		{`{"source":"db","credential":{"type":"token","token":"tok-0123456789abcdef"}}`, "", ""},
		{`{"source":"nope","credential":{"type":"password","password":"x"}}`, "", ""},
		{`{"source":"db","credential":{"type":"password","password":"x"},"targets":["a","a","zz"]}`, "", ""},
		{`{"source":"db","credential":{"type":"password","password":""}}`, "", ""},
		{`{"source":"db","credential":null}`, "", ""},
		{`{"source":"db","credential":{"type":"password","password":"x","extra":1},"dry":true}`, "", ""},
		{`{"source":["db"],"credential":"x","targets":"a","dry_run":"yes"}`, "-1s", ""},
		{`{"source":"db","credential":{"type":"gcp_service_account","service_account_json":"{}"}}`, "10m", ""},
		{`{"source":"db","credential":{"type":"custom_headers","headers":[{"name":"X","value":"v"}]}}`, "abc", ""},
		{`{"source":"db"`, "", ""},
		{`[]`, "", ""},
		{``, "", ""},
		{`null`, "", ""},
		{`{"source":"db","credential":{"type":"password","password":"Pw-0123456789abcdef"}} {}`, "", ""},
	} {
		f.Add([]byte(seed.body), seed.wait, seed.key)
	}
	f.Fuzz(func(t *testing.T, body []byte, wait, key string) {
		target := "/v1/rotations"
		if wait != "" {
			target += "?" + url.Values{"wait": {wait}}.Encode()
		}
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second) // a ?wait= never holds a fuzz run up
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))

		if rec.Code >= 500 {
			t.Fatalf("answered %d to %q: %s", rec.Code, body, rec.Body)
		}
		out := rec.Body.Bytes()
		if !json.Valid(out) {
			t.Fatalf("answered %d with a body that is not JSON: %q", rec.Code, out)
		}
		if rec.Code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(out, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("answered %d without the error envelope: %s", rec.Code, out)
			}
		}

		// No secret of the credential comes back, unless the caller also sent it outside the
		// credential (a source or target name is not a secret).
		var doc map[string]json.RawMessage
		if json.Unmarshal(body, &doc) != nil {
			return
		}
		cred, err := core.DecodeCredential(doc["credential"])
		if err != nil {
			return
		}
		delete(doc, "credential")
		rest, _ := json.Marshal(doc)
		for _, s := range cred.Secrets() {
			esc, _ := json.Marshal(s)
			if distinctive(s) && !strings.Contains(string(rest), s) && !strings.Contains(string(rest), string(esc[1:len(esc)-1])) &&
				(strings.Contains(rec.Body.String(), s) || strings.Contains(rec.Body.String(), string(esc[1:len(esc)-1]))) {
				t.Fatalf("the answer holds the secret %q: %s", s, out)
			}
		}
	})
}
