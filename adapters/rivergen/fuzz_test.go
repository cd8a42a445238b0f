package rivergen

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/credsync/credsync/adapters/vendorhttp"
	_ "github.com/credsync/credsync/internal/golden" // defines -update
)

// isInputPath reports whether path (object keys and array indexes) is a field value RiverGen
// quotes back: the "input" of a detail entry (FastAPI's {"loc", "msg", "input"}), at detail[i]
// or error.details[i]. Keys match in any case, as encoding/json does.
func isInputPath(p []string) bool {
	eq := strings.EqualFold
	switch len(p) {
	case 3:
		return eq(p[0], "detail") && eq(p[2], "input")
	case 4:
		return eq(p[0], "error") && eq(p[1], "details") && eq(p[3], "input")
	}
	return false
}

// reencode re-encodes the JSON document body token by token (keys in order, duplicates kept),
// replacing every value at an input path by another string when replace is set. ok is false when
// body is not one JSON value.
func reencode(body []byte, replace bool) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out bytes.Buffer
	var value func(path []string) error
	value = func(path []string) error {
		if replace && isInputPath(path) {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			out.WriteString(`"replaced-input"`)
			return nil
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			open, close := byte('['), byte(']')
			if v == '{' {
				open, close = '{', '}'
			}
			out.WriteByte(open)
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				key := strconv.Itoa(i)
				if v == '{' {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					key = k.(string)
					kb, _ := json.Marshal(key)
					out.Write(kb)
					out.WriteByte(':')
				}
				if err := value(append(path[:len(path):len(path)], key)); err != nil {
					return err
				}
			}
			out.WriteByte(close)
			_, err := dec.Token()
			return err
		case json.Number:
			out.WriteString(v.String())
		default: // string, bool, nil
			b, _ := json.Marshal(v)
			out.Write(b)
		}
		return nil
	}
	if value(nil) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out.Bytes(), true
}

// FuzzVendorMessage feeds RiverGen's error-body parser arbitrary bodies: it must never panic; the
// message is valid UTF-8, bounded, and empty only for an empty body; and when it reads the body
// (rather than quoting a snippet of it) it never echoes the field values RiverGen quotes back.
func FuzzVendorMessage(f *testing.F) {
	for _, seed := range []string{
		`{"success":false,"error":{"code":"VALIDATION_ERROR","message":"Invalid request body","details":[{"field":"password","message":"must be a string"}]},"message":"Invalid request body"}`,
		`{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing authentication token"},"message":"Invalid or missing authentication token"}`,
		`{"success":false,"error":"Data source not found"}`,
		`{"detail":"Not authenticated"}`,
		`{"detail":[{"loc":["body","password"],"msg":"str type expected","type":"type_error.str","input":"hunter2-secret"}]}`,
		`{"detail":[{"loc":["body",0,"x"],"msg":"a"},{"loc":[],"msg":""},{"field":"f"}]}`,
		`{"error":{"code":"E","details":[{"field":"ssh_private_key","message":"bad","input":"-----BEGIN KEY-----"}]}}`,
		`{"error":{"code":"E","details":{"code":"C","message":"M"}}}`,
		`{"message":"Credentials updated successfully","success":true}`,
		`{"detail":[` + strings.Repeat(`{"loc":["body","x"],"msg":"m"},`, 12) + `{"msg":"last"}]}`,
		`{}`,
		`[]`,
		`"just a string"`,
		`<html>502</html>`,
		"",
		"  \n",
		"\xff\xfe\xc3",
		`{"error":"` + strings.Repeat("€", 200) + `"}`,
		strings.Repeat("日本", 120),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := vendorMessage(body)
		if !utf8.ValidString(msg) {
			t.Fatalf("not valid UTF-8: %q", msg)
		}
		if len(msg) > maxMessage+3 {
			t.Fatalf("%d bytes: unbounded", len(msg))
		}
		if (msg == "") != (len(bytes.TrimSpace(body)) == 0) {
			t.Fatalf("message %q for body %q", msg, body)
		}
		same, ok := reencode(body, false)
		if !ok {
			return
		}
		other, _ := reencode(body, true)
		read := vendorMessage(same)
		if read == vendorhttp.Snippet(bytes.TrimSpace(same), 200) {
			return // a snippet quotes the body (scrubbed by Send before): not a parsed message
		}
		if got := vendorMessage(other); got != read {
			t.Fatalf("a quoted-back input value reached the message:\n%q\n%q", read, got)
		}
	})
}
