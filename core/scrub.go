package core

import (
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
		if b, err := json.Marshal(sec); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != sec {
				s = strings.ReplaceAll(s, esc, Redacted)
			}
		}
	}
	return s
}
