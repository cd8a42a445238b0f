package core

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
)

// Request is the exact call an adapter makes to its vendor for one target: the method, the path
// (with any query) below the platform's base URL, and the JSON body. Build it from map[string]any,
// []any, plain values and Secret / SecretJSON values: json.Marshal of a Request then redacts every
// secret (the dry run), while WireBody reveals them for the vendor. Maps marshal with sorted keys,
// so the body is canonical.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   any    `json:"body,omitempty"`
}

// WireBody returns the body as the vendor receives it: canonical JSON with secrets revealed.
// A nil Body gives nil.
func (r Request) WireBody() ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	v, err := reveal(r.Body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s body: %w", r.Method, r.Path, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s body: %w", r.Method, r.Path, err)
	}
	return b, nil
}

// reveal copies a body tree, replacing secrets by their clear values. Only the shapes adapters are
// told to use are accepted; anything else is an error rather than a silent redaction on the wire.
func reveal(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int, int64, float64, json.Number:
		return x, nil
	case Secret:
		return x.Reveal(), nil
	case SecretJSON:
		raw := json.RawMessage(x.Reveal())
		if !json.Valid(raw) {
			return nil, fmt.Errorf("a JSON secret is not valid JSON")
		}
		return raw, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := reveal(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := reveal(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := reveal(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported body value of type %s", reflect.TypeOf(v))
	}
}

// Secrets returns the clear values of every secret in the body, so that what the vendor echoes
// back can be scrubbed of them (vendorhttp does it). As in Credential.Secrets, a secret that is a
// JSON document with secret fields (a GCP service account, sent as an object or as a string)
// gives those fields rather than the whole document, whose pieces are ordinary words; a secret
// that is the base64 of such a document (Felt's base64_encoded_service_account) gives those
// fields as well as itself, since a vendor may quote the document decoded.
func (r Request) Secrets() []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case Secret:
			if !x.IsZero() {
				out = append(out, secretValues(x.Reveal())...)
			}
		case SecretJSON:
			if !x.IsZero() {
				out = append(out, secretValues(x.Reveal())...)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case []map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(r.Body)
	return out
}

// secretValues is what one secret of a request body contributes to Request.Secrets.
func secretValues(v string) []string {
	if inner, ok := documentSecrets(v); ok {
		return inner
	}
	out := []string{v}
	if len(v)%4 == 0 {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			if inner, ok := documentSecrets(string(b)); ok {
				out = append(out, inner...)
			}
		}
	}
	return out
}
