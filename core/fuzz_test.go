package core_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

// secretKeys are the credential's secret fields, at the top level of the credential object.
var secretKeys = []string{"password", "private_key", "private_key_passphrase", "token", "client_secret", "secret_access_key", "connection_string"}

// replaceSecrets returns raw with every non-empty string value of a secret field (top level,
// ssh_tunnel, headers[].value) replaced by another non-empty string. ok is false when raw is not
// a JSON object or holds an object whose keys differ only in case (encoding/json then picks one
// by order, which re-encoding changes).
func replaceSecrets(raw []byte) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, false
	}
	replace := func(m map[string]json.RawMessage, keys ...string) {
		for _, k := range keys {
			var s string
			if v, ok := m[k]; ok && json.Unmarshal(v, &s) == nil && s != "" {
				m[k] = json.RawMessage(`"replaced-secret-value"`)
			}
		}
	}
	replace(obj, secretKeys...)
	nested := func(raw json.RawMessage, keys ...string) (json.RawMessage, bool) {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return raw, true // not an object: left as it is, decoded alike both times
		}
		lower := map[string]bool{}
		for k := range m {
			if lower[strings.ToLower(k)] {
				return nil, false
			}
			lower[strings.ToLower(k)] = true
		}
		replace(m, keys...)
		b, err := json.Marshal(m)
		return b, err == nil
	}
	if v, ok := obj["ssh_tunnel"]; ok {
		b, ok := nested(v, "private_key", "passphrase")
		if !ok {
			return nil, false
		}
		obj["ssh_tunnel"] = b
	}
	if v, ok := obj["headers"]; ok {
		var list []json.RawMessage
		if json.Unmarshal(v, &list) == nil {
			for i, h := range list {
				b, ok := nested(h, "value")
				if !ok {
					return nil, false
				}
				list[i] = b
			}
			b, err := json.Marshal(list)
			if err != nil {
				return nil, false
			}
			obj["headers"] = b
		}
	}
	b, err := json.Marshal(obj)
	return b, err == nil
}

// FuzzDecodeCredential feeds the credential decoder arbitrary JSON. It must never panic; every
// refusal is an *InputError; a secret value never shapes an error message or the redacted JSON
// (the same input with other secret values gives the same answer); and what it accepts survives
// EncodeClear (the sealed form) unchanged.
func FuzzDecodeCredential(f *testing.F) {
	for _, seed := range []string{
		`{"type":"password","password":"s3cr3t"}`,
		`{"type":"password","username":"svc","password":"s3cr3t","ssh_tunnel":{"private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAA\n-----END OPENSSH PRIVATE KEY-----","passphrase":"pp"}}`,
		`{"type":"key_pair","username":"SVC","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----","private_key_passphrase":"pp","private_key_name":"k1"}`,
		`{"type":"token","token":"dapi0123456789abcdef"}`,
		`{"type":"oauth_client","client_id":"bi-client","client_secret":"cs-123"}`,
		`{"type":"gcp_service_account","filename":"sa.json","service_account_json":{"type":"service_account","project_id":"p","private_key":"-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----"}}`,
		`{"type":"gcp_service_account","service_account_json":"{\"type\":\"service_account\",\"private_key\":\"k\"}"}`,
		`{"type":"aws_access_key","access_key_id":"AKIAEXAMPLE","secret_access_key":"wJalrXUtnFEMI"}`,
		`{"type":"aws_assume_role","role_arn":"arn:aws:iam::123456789012:role/r","role_session_name":"felt"}`,
		`{"type":"azure_connection_string","connection_string":"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k=="}`,
		`{"type":"custom_headers","headers":[{"name":"X-Api-Key","value":"hk-1","sensitive":true},{"name":"X-Team","value":"bi","sensitive":false}]}`,
		`{"type":"password","password":"","pasword":"typo"}`,
		`{"type":"password","password":12345}`,
		`{"type":"token","password":"wrong-field"}`,
		`{"type":"nope"}`,
		`{"type":7}`,
		`{}`,
		`[]`,
		`null`,
		`"password"`,
		`{"type":"password","password":"p","ssh_tunnel":{"passphrase":"only"}}`,
		`{"type":"custom_headers","headers":[{"name":"","value":""}]}`,
		`{"type":"gcp_service_account","service_account_json":"not json"}`,
		`{"type":"password","password":"p\u003c\u0026\"\\é"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cred, err := core.DecodeCredential(raw)
		if err != nil {
			var ie *core.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("refusal %T is not an *InputError: %v", err, err)
			}
		}
		if other, ok := replaceSecrets(raw); ok {
			cred2, err2 := core.DecodeCredential(other)
			if (err == nil) != (err2 == nil) {
				t.Fatalf("a secret value decided acceptance: %v / %v", err, err2)
			}
			if err != nil && err.Error() != err2.Error() {
				t.Fatalf("a secret value shaped the error message:\n%s\n%s", err, err2)
			}
			if err == nil {
				a, errA := json.Marshal(cred)
				b, errB := json.Marshal(cred2)
				if errA != nil || errB != nil {
					t.Fatalf("marshal: %v %v", errA, errB)
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("a secret value reached the redacted JSON:\n%s\n%s", a, b)
				}
			}
		}
		if err != nil {
			return
		}
		clear, err := cred.EncodeClear()
		if err != nil {
			t.Fatalf("EncodeClear: %v", err)
		}
		back, err := core.DecodeCredential(clear)
		if err != nil {
			t.Fatalf("the sealed form %s does not decode: %v", clear, err)
		}
		if back.Type != cred.Type || !reflect.DeepEqual(back.Secrets(), cred.Secrets()) {
			t.Fatalf("round trip changed the credential: %q vs %q", back.Secrets(), cred.Secrets())
		}
		a, _ := json.Marshal(cred)
		b, _ := json.Marshal(back)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the credential:\n%s\n%s", a, b)
		}
	})
}
