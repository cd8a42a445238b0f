package core_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
	"github.com/credsync/credsync/internal/jsonx"
)

// secretKeys are the credential's secret fields, at the top level of the credential object.
var secretKeys = map[string]bool{"password": true, "private_key": true, "private_key_passphrase": true, "token": true,
	"client_secret": true, "secret_access_key": true, "connection_string": true}

// isSecretPath reports whether the value at path (object keys and array indexes) is a secret:
// a top-level secret field (matched exactly, as DecodeCredential does), ssh_tunnel.private_key or
// .passphrase, or headers[i].value (nested keys match in any case, as encoding/json does).
func isSecretPath(path []string) bool {
	switch {
	case len(path) == 1:
		return secretKeys[path[0]]
	case len(path) == 2 && path[0] == "ssh_tunnel":
		return strings.EqualFold(path[1], "private_key") || strings.EqualFold(path[1], "passphrase")
	case len(path) == 3 && path[0] == "headers":
		return strings.EqualFold(path[2], "value")
	}
	return false
}

// replaceSecrets re-encodes the JSON object raw token by token, keys in their order and
// duplicates kept, with every non-empty string at a secret path replaced by another non-empty
// string. ok is false when raw is not one JSON object.
func replaceSecrets(raw []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	var value func(path []string) error
	value = func(path []string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' {
				out.WriteByte('{')
				for i := 0; dec.More(); i++ {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if i > 0 {
						out.WriteByte(',')
					}
					kb, _ := json.Marshal(k)
					out.Write(kb)
					out.WriteByte(':')
					if err := value(append(path[:len(path):len(path)], k.(string))); err != nil {
						return err
					}
				}
				out.WriteByte('}')
			} else {
				out.WriteByte('[')
				for i := 0; dec.More(); i++ {
					if i > 0 {
						out.WriteByte(',')
					}
					if err := value(append(path[:len(path):len(path)], strconv.Itoa(i))); err != nil {
						return err
					}
				}
				out.WriteByte(']')
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			if v != "" && isSecretPath(path) {
				v = "replaced-secret-value"
			}
			b, _ := json.Marshal(v)
			out.Write(b)
		case json.Number:
			out.WriteString(v.String())
		default: // bool, nil
			b, _ := json.Marshal(v)
			out.Write(b)
		}
		return nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && value(nil) == nil {
		if _, err := dec.Token(); err == io.EOF {
			return out.Bytes(), true
		}
	}
	return nil, false
}

// sameSecrets compares secret values; a JSON document (the service account) compares by content,
// since re-encoding it may escape <, > and & differently.
func sameSecrets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		var x, y any
		if json.Unmarshal([]byte(a[i]), &x) != nil || json.Unmarshal([]byte(b[i]), &y) != nil || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
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
		// Invalid UTF-8, a lone surrogate or a duplicated key is refused wherever it is, secret
		// values included: that refusal names the field, not the value, so it is exempt.
		if jsonx.Check(raw) != nil {
			if err == nil {
				t.Fatalf("accepted a body jsonx refuses")
			}
			return
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
		if back.Type != cred.Type || !sameSecrets(back.Secrets(), cred.Secrets()) {
			t.Fatalf("round trip changed the credential: %q vs %q", back.Secrets(), cred.Secrets())
		}
		a, _ := json.Marshal(cred)
		b, _ := json.Marshal(back)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the credential:\n%s\n%s", a, b)
		}
	})
}
