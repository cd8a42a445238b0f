package core

import (
	"encoding/json"
	"fmt"
)

// Redacted is what a Secret prints, marshals and logs as.
const Redacted = "[REDACTED]"

// Secret holds a secret value. Printing it with any fmt verb, marshalling it to JSON or text, or
// logging it through zap yields "[REDACTED]"; only Reveal returns the value. The value sits behind
// an unexported pointer: a conversion such as string(s) does not compile, and even fmt's fallback
// printing of a struct holding a Secret (a bad verb, where methods are not consulted) shows an
// address, never the value.
type Secret struct{ p *secretValue }

type secretValue struct{ v string }

// NewSecret wraps a clear value.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{p: &secretValue{v: v}}
}

// Reveal returns the clear value. Call it only where the value leaves for a vendor.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.p == nil || s.p.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%s %v %q %x %d ...) prints the redaction.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText implements encoding.TextMarshaler (used by zap's reflection and YAML encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a JSON string into the secret.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("a secret must be a JSON string")
	}
	*s = NewSecret(v)
	return nil
}

// UnmarshalText reads clear text into the secret (YAML config values).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = NewSecret(string(b))
	return nil
}

// SecretJSON is a secret whose clear value is a JSON document (for example a GCP service account
// object). On the wire it is sent as that raw JSON, not as a string; everywhere else it redacts.
type SecretJSON struct{ Secret }

// NewSecretJSON wraps a JSON document.
func NewSecretJSON(doc string) SecretJSON { return SecretJSON{NewSecret(doc)} }
