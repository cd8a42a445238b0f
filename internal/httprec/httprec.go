// Package httprec records HTTP requests as a fake vendor received them and renders them in the
// canonical form of the golden files: the request line, the headers sorted (the bearer token
// replaced by <token>), and the body as indented JSON with sorted keys. It imports no testing
// code, so the fakes that the demo runs can use it.
package httprec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Request is one recorded HTTP request.
type Request struct {
	Method string
	Path   string // with query, as received
	Header http.Header
	Body   []byte
}

// Record copies what a handler received; call it with the body already read.
func Record(r *http.Request, body []byte) Request {
	return Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: append([]byte(nil), body...)}
}

// skipHeaders are left out of golden files: the token (shown as a placeholder) and what Go's
// transport adds on its own.
var skipHeaders = map[string]bool{"Authorization": true, "Accept-Encoding": true, "Content-Length": true}

// Format renders a request canonically: the request line, the headers sorted (the bearer token
// replaced by <token>), a blank line, and the body as indented JSON with sorted keys.
func Format(r Request) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.Path)
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		fmt.Fprintf(&b, "Authorization: %s <token>\n", scheme)
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !skipHeaders[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if len(r.Body) > 0 {
		b.Write(CanonicalJSON(r.Body))
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// CanonicalJSON re-indents a JSON document with sorted keys; a body that is not JSON is returned
// as it is.
func CanonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return body
	}
	return out
}
