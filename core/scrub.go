package core

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Scrub replaces every occurrence of each secret in s, in clear and in its JSON-escaped form,
// with [REDACTED]. It is applied to anything a vendor said before it is stored or logged, since
// vendors echo submitted values back in error bodies.
func Scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, Redacted)
		for _, esc := range jsonEscaped(sec) {
			s = strings.ReplaceAll(s, esc, Redacted)
		}
	}
	return s
}

// ScrubBytes is Scrub for a body.
func ScrubBytes(b []byte, secrets []string) []byte {
	if len(secrets) == 0 {
		return b
	}
	return []byte(Scrub(string(b), secrets))
}

// jsonEscaped returns the forms a secret takes inside a JSON string that differ from the secret
// itself: with and without HTML escaping (<, >, & as \u003c...), as encoders differ.
func jsonEscaped(sec string) []string {
	var out []string
	for _, html := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		if enc.Encode(sec) != nil {
			continue
		}
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if esc := string(b[1 : len(b)-1]); esc != sec && (len(out) == 0 || out[0] != esc) {
			out = append(out, esc)
		}
	}
	return out
}

// Scrubber removes a fixed set of secrets from text.
type Scrubber struct{ secrets []string }

// NewScrubber returns a scrubber of secrets.
func NewScrubber(secrets ...string) *Scrubber { return &Scrubber{secrets: secrets} }

// String scrubs s.
func (sc *Scrubber) String(s string) string {
	if sc == nil {
		return s
	}
	return Scrub(s, sc.secrets)
}
