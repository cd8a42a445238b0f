package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/credsync/credsync/internal/jsonx"
)

// CredentialType tags a neutral credential.
type CredentialType string

// The credential types of the neutral model (DESIGN.md, "Credential model").
const (
	TypePassword              CredentialType = "password"
	TypeKeyPair               CredentialType = "key_pair"
	TypeToken                 CredentialType = "token"
	TypeOAuthClient           CredentialType = "oauth_client"
	TypeGCPServiceAccount     CredentialType = "gcp_service_account"
	TypeAWSAccessKey          CredentialType = "aws_access_key"
	TypeAWSAssumeRole         CredentialType = "aws_assume_role"
	TypeAzureConnectionString CredentialType = "azure_connection_string"
	TypeCustomHeaders         CredentialType = "custom_headers"
)

// CredentialTypes lists every type, in documentation order.
func CredentialTypes() []CredentialType {
	return []CredentialType{TypePassword, TypeKeyPair, TypeToken, TypeOAuthClient, TypeGCPServiceAccount,
		TypeAWSAccessKey, TypeAWSAssumeRole, TypeAzureConnectionString, TypeCustomHeaders}
}

// field describes one JSON field of a credential type.
type field struct {
	name     string
	required bool
}

// credentialFields is the schema of each type: which fields it has and which are required.
// "ssh_tunnel" is allowed beside every type and is not listed here.
var credentialFields = map[CredentialType][]field{
	TypePassword:              {{"username", false}, {"password", true}},
	TypeKeyPair:               {{"username", false}, {"private_key", true}, {"private_key_passphrase", false}, {"private_key_name", false}},
	TypeToken:                 {{"token", true}},
	TypeOAuthClient:           {{"client_id", true}, {"client_secret", true}},
	TypeGCPServiceAccount:     {{"service_account_json", true}, {"filename", false}},
	TypeAWSAccessKey:          {{"access_key_id", true}, {"secret_access_key", true}},
	TypeAWSAssumeRole:         {{"role_arn", true}, {"role_session_name", true}},
	TypeAzureConnectionString: {{"connection_string", true}},
	TypeCustomHeaders:         {{"headers", true}},
}

// Header is one custom header of a custom_headers credential.
type Header struct {
	Name      string `json:"name"`
	Value     Secret `json:"value"`
	Sensitive bool   `json:"sensitive"`
}

// SSHTunnel is the SSH key a platform uses to reach the database through a tunnel.
type SSHTunnel struct {
	PrivateKey Secret `json:"private_key"`
	Passphrase Secret `json:"passphrase,omitempty"`
}

// Credential is one neutral credential. Which fields are set depends on Type; DecodeCredential
// guarantees that only the fields of that type are set and that the required ones are present.
// Secret fields are Secret values: the struct can be printed, logged or marshalled safely.
type Credential struct {
	Type CredentialType `json:"type"`

	Username string `json:"username,omitempty"`
	Password Secret `json:"password,omitempty"`

	PrivateKey           Secret `json:"private_key,omitempty"`
	PrivateKeyPassphrase Secret `json:"private_key_passphrase,omitempty"`
	PrivateKeyName       string `json:"private_key_name,omitempty"`

	Token Secret `json:"token,omitempty"`

	ClientID     string `json:"client_id,omitempty"`
	ClientSecret Secret `json:"client_secret,omitempty"`

	// ServiceAccountJSON holds the service account document as JSON text (an object), whether the
	// caller sent it as an object or as a string.
	ServiceAccountJSON SecretJSON `json:"service_account_json,omitempty"`
	Filename           string     `json:"filename,omitempty"`

	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey Secret `json:"secret_access_key,omitempty"`

	RoleARN         string `json:"role_arn,omitempty"`
	RoleSessionName string `json:"role_session_name,omitempty"`

	ConnectionString Secret `json:"connection_string,omitempty"`

	Headers []Header `json:"headers,omitempty"`

	SSHTunnel *SSHTunnel `json:"ssh_tunnel,omitempty"`
}

// Problem is one thing wrong with client input, addressed by a JSON path such as
// "credential.password".
type Problem struct {
	Field   string `json:"field"`
	Target  string `json:"target,omitempty"` // the target that cannot take the input, if any
	Message string `json:"message"`
}

// InputError is a client mistake that nothing was sent for: the API answers it with 422.
type InputError struct {
	Message  string
	Problems []Problem
}

func (e *InputError) Error() string {
	if len(e.Problems) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// DecodeCredential parses and validates a credential from JSON. Every problem found is reported
// at once in an *InputError; the error never contains a secret value.
func DecodeCredential(raw []byte) (Credential, error) {
	var cred Credential
	// Refused before anything else: invalid UTF-8, lone surrogates and duplicated keys would
	// otherwise alter or pick among the values silently.
	if err := jsonx.Check(raw); err != nil {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{jsonProblem(err)}}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential", Message: "must be a JSON object"}}}
	}
	var typ string
	if t, ok := obj["type"]; !ok {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential.type", Message: "is required; one of " + typeList()}}}
	} else if err := json.Unmarshal(t, &typ); err != nil {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential.type", Message: "must be a string; one of " + typeList()}}}
	}
	fields, ok := credentialFields[CredentialType(typ)]
	if !ok {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential.type", Message: fmt.Sprintf("unknown type %q; one of %s", typ, typeList())}}}
	}
	var problems []Problem
	allowed := map[string]bool{"type": true, "ssh_tunnel": true}
	for _, f := range fields {
		allowed[f.name] = true
		if v, ok := obj[f.name]; f.required && (!ok || isEmptyJSON(v)) {
			problems = append(problems, Problem{Field: "credential." + f.name, Message: "is required for type " + typ})
		}
	}
	var unknown []string
	for k := range obj {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		problems = append(problems, Problem{Field: "credential." + k, Message: fmt.Sprintf("is not a field of type %s (fields: %s)", typ, fieldList(fields))})
	}
	if len(problems) > 0 {
		return cred, &InputError{Message: "invalid credential", Problems: problems}
	}

	// service_account_json may be an object or a string holding an object.
	if sa, ok := obj["service_account_json"]; ok {
		doc, err := serviceAccountDoc(sa)
		if err != nil {
			return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential.service_account_json", Message: err.Error()}}}
		}
		delete(obj, "service_account_json")
		cred.ServiceAccountJSON = NewSecretJSON(doc)
	}
	rest, err := json.Marshal(obj)
	if err != nil {
		return cred, fmt.Errorf("re-encode credential: %w", err)
	}
	// Nested keys (ssh_tunnel, headers) are case-sensitive too.
	if err := jsonx.CheckKeys(rest, &cred); err != nil {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{jsonProblem(err)}}
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cred); err != nil {
		return cred, &InputError{Message: "invalid credential", Problems: []Problem{{Field: "credential", Message: describeJSONError(err)}}}
	}
	if p := cred.check(); len(p) > 0 {
		return cred, &InputError{Message: "invalid credential", Problems: p}
	}
	return cred, nil
}

// jsonProblem turns a jsonx error on a credential into a Problem at its path.
func jsonProblem(err error) Problem {
	var je *jsonx.Error
	if errors.As(err, &je) {
		field := "credential"
		if je.Path != "" {
			field += "." + je.Path
		}
		return Problem{Field: field, Message: je.Problem}
	}
	return Problem{Field: "credential", Message: "is not valid JSON"}
}

// check validates what the schema table cannot: nested structures.
func (c *Credential) check() []Problem {
	var problems []Problem
	for i, h := range c.Headers {
		if strings.TrimSpace(h.Name) == "" {
			problems = append(problems, Problem{Field: fmt.Sprintf("credential.headers[%d].name", i), Message: "is required"})
		}
		if h.Value.IsZero() {
			problems = append(problems, Problem{Field: fmt.Sprintf("credential.headers[%d].value", i), Message: "is required"})
		}
	}
	if c.SSHTunnel != nil && c.SSHTunnel.PrivateKey.IsZero() {
		problems = append(problems, Problem{Field: "credential.ssh_tunnel.private_key", Message: "is required when ssh_tunnel is given"})
	}
	return problems
}

// Secrets returns every secret value the credential carries, for scrubbing vendor answers. A
// Scrubber removes each value and every piece of PieceLen characters of it from whatever a vendor
// says, so this is exactly what must never be shown, and no more:
//   - password, private_key, private_key_passphrase, token, client_secret, secret_access_key,
//     connection_string, and ssh_tunnel's private_key and passphrase;
//   - every custom header value, whatever its sensitive flag: the design marks every value secret,
//     sensitive is how the vendor displays it, and a value wrongly marked false must not leak;
//   - of a GCP service account document, the secret fields inside it (private_key,
//     private_key_id, and any field named like a secret: see documentSecrets), not the document:
//     the pieces of the whole document include `"type":"service_account"`, `project_id` and the
//     URIs every such file has, and they would be cut out of every vendor message. A quote of the
//     document that carries secret material carries its private key, and that is caught. A
//     document without any such field is kept whole.
//
// Not secrets: username, client_id, access_key_id, role_arn, role_session_name, filename and
// private_key_name name things, and vendors rightly name them in their messages.
func (c *Credential) Secrets() []string {
	var out []string
	add := func(s Secret) {
		if !s.IsZero() {
			out = append(out, s.Reveal())
		}
	}
	add(c.Password)
	add(c.PrivateKey)
	add(c.PrivateKeyPassphrase)
	add(c.Token)
	add(c.ClientSecret)
	if doc := c.ServiceAccountJSON.Reveal(); doc != "" {
		if inner, ok := documentSecrets(doc); ok {
			out = append(out, inner...)
		} else {
			out = append(out, doc)
		}
	}
	add(c.SecretAccessKey)
	add(c.ConnectionString)
	for _, h := range c.Headers {
		add(h.Value)
	}
	if c.SSHTunnel != nil {
		add(c.SSHTunnel.PrivateKey)
		add(c.SSHTunnel.Passphrase)
	}
	return out
}

// documentSecrets returns the string values, at any depth, of the fields of a JSON object whose
// name says they are secret (isSecretField), and whether doc is such an object with at least one.
func documentSecrets(doc string) ([]string, bool) {
	var v any
	if json.Unmarshal([]byte(doc), &v) != nil {
		return nil, false
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, false
	}
	var out []string
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, secret || isSecretField(k))
			}
		case []any:
			for _, e := range x {
				walk(e, secret)
			}
		case string:
			if secret && x != "" {
				out = append(out, x)
			}
		}
	}
	walk(v, false)
	sort.Strings(out) // map order: keep Secrets deterministic
	return out, len(out) > 0
}

// isSecretField reports whether a field of a key file holds a secret: private_key and
// private_key_id of a service account, client_secret and refresh_token of an authorized user, and
// the like; not token_uri or subject_token_type, which name endpoints and kinds.
func isSecretField(name string) bool {
	k := strings.ToLower(name)
	if strings.HasSuffix(k, "_uri") || strings.HasSuffix(k, "_url") || strings.HasSuffix(k, "_type") {
		return false
	}
	for _, w := range []string{"private_key", "secret", "password", "passphrase", "token", "api_key", "apikey"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func serviceAccountDoc(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		raw = json.RawMessage(s)
		// The body's own check did not look inside the string: the document it holds is sealed
		// and sent as an object, so it must pass that check too (a key given twice would be
		// accepted here and refused when the sealed form is read back). The message names no
		// key: everything in this document is the secret.
		if json.Valid(raw) && jsonx.Check(raw) != nil {
			return "", fmt.Errorf("the service account JSON in the string must give each key once, in valid UTF-8 without lone surrogates")
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || len(obj) == 0 {
		return "", fmt.Errorf("must be a non-empty service account JSON object, or a string holding one")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", fmt.Errorf("must be valid JSON")
	}
	return buf.String(), nil
}

func isEmptyJSON(v json.RawMessage) bool {
	s := strings.TrimSpace(string(v))
	return s == "null" || s == `""` || s == "[]" || s == "{}"
}

// describeJSONError turns a decoding error into a message that names the field but never echoes a value.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be a JSON %s", te.Field, jsonKind(te.Type.Kind().String()))
	}
	msg := err.Error()
	if strings.Contains(msg, "a secret must be a JSON string") {
		return "secret fields must be JSON strings"
	}
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "malformed value"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		return goKind
	}
}

func typeList() string { return JoinTypes(CredentialTypes()) }

// JoinTypes lists credential types for a message: "password, token".
func JoinTypes(ts []CredentialType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func fieldList(fields []field) string {
	s := make([]string, 0, len(fields)+1)
	for _, f := range fields {
		s = append(s, f.name)
	}
	s = append(s, "ssh_tunnel")
	return strings.Join(s, ", ")
}

// EncodeClear is the inverse of DecodeCredential: the credential as JSON with every secret in
// clear. Its only use is to be sealed (encrypted) for storage; never log or return it.
func (c *Credential) EncodeClear() ([]byte, error) {
	m := map[string]any{"type": string(c.Type)}
	str := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	sec := func(k string, s Secret) {
		if !s.IsZero() {
			m[k] = s.Reveal()
		}
	}
	str("username", c.Username)
	sec("password", c.Password)
	sec("private_key", c.PrivateKey)
	sec("private_key_passphrase", c.PrivateKeyPassphrase)
	str("private_key_name", c.PrivateKeyName)
	sec("token", c.Token)
	str("client_id", c.ClientID)
	sec("client_secret", c.ClientSecret)
	if !c.ServiceAccountJSON.IsZero() {
		m["service_account_json"] = json.RawMessage(c.ServiceAccountJSON.Reveal())
	}
	str("filename", c.Filename)
	str("access_key_id", c.AccessKeyID)
	sec("secret_access_key", c.SecretAccessKey)
	str("role_arn", c.RoleARN)
	str("role_session_name", c.RoleSessionName)
	sec("connection_string", c.ConnectionString)
	if len(c.Headers) > 0 {
		hs := make([]map[string]any, len(c.Headers))
		for i, h := range c.Headers {
			hs[i] = map[string]any{"name": h.Name, "value": h.Value.Reveal(), "sensitive": h.Sensitive}
		}
		m["headers"] = hs
	}
	if c.SSHTunnel != nil {
		t := map[string]any{"private_key": c.SSHTunnel.PrivateKey.Reveal()}
		if !c.SSHTunnel.Passphrase.IsZero() {
			t["passphrase"] = c.SSHTunnel.Passphrase.Reveal()
		}
		m["ssh_tunnel"] = t
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode credential: %w", err)
	}
	return b, nil
}

// Sealer encrypts credentials at rest. aad binds a sealed credential to its rotation, so a
// ciphertext copied onto another rotation does not open.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}
