package core

import (
	"encoding/json"
	"fmt"
)

// Redacted is what a Secret prints, marshals and logs as.
const Redacted = "[REDACTED]"

// Secret holds a secret value. Printing it with any fmt verb, marshalling it to JSON or text, or
// logging it through zap yields "[REDACTED]"; only Reveal returns the value. The value is an
// unexported field so that a plain conversion such as string(s) does not compile.
type Secret struct{ v string }

// NewSecret wraps a clear value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the clear value. Call it only where the value leaves for a vendor.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

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
	s.v = v
	return nil
}

// UnmarshalText reads clear text into the secret (YAML config values).
func (s *Secret) UnmarshalText(b []byte) error {
	s.v = string(b)
	return nil
}

// SecretJSON is a secret whose clear value is a JSON document (for example a GCP service account
// object). On the wire it is sent as that raw JSON, not as a string; everywhere else it redacts.
type SecretJSON struct{ Secret }

// NewSecretJSON wraps a JSON document.
func NewSecretJSON(doc string) SecretJSON { return SecretJSON{NewSecret(doc)} }
