// Package jsonx reads JSON request bodies strictly: a credential must never be silently altered
// or ambiguous. Go's encoding/json replaces invalid UTF-8 and lone UTF-16 surrogates with U+FFFD,
// keeps the last of duplicated keys, and matches keys to struct fields case-insensitively;
// jsonx refuses all of that, naming where (a path such as credential.headers[0].name), never
// what the value was: it could be a secret.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is one problem found in a body.
type Error struct {
	Path    string // "" for the body itself
	Problem string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + ": " + e.Problem
}

// Check walks a JSON document and refuses invalid UTF-8, lone surrogates in \u escapes and
// duplicated object keys at any depth (keys are compared exactly: "a" and "A" differ).
func Check(body []byte) error {
	if !json.Valid(body) {
		return &Error{Problem: "the body is not valid JSON"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		key    string // object: the current key
		index  int    // array: the next element's index
		expect bool   // object: the next string token is a key
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if f.key == "" {
					continue
				}
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.index-1)
			}
		}
		return b.String()
	}
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Error{Problem: "the body is not valid JSON"}
		}
		raw := body[prev:dec.InputOffset()]
		prev = dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.expect
		if _, ok := tok.(json.Delim); !ok && top != nil && !top.object && !isKey {
			top.index++
		}
		if s, ok := tok.(string); ok {
			where := path()
			if isKey {
				where = joinPath(where, s)
			}
			if !utf8.Valid(raw) {
				return &Error{Path: where, Problem: "holds invalid UTF-8: send the value as UTF-8 (nothing is altered silently)"}
			}
			if lone(raw) {
				return &Error{Path: where, Problem: `holds a lone UTF-16 surrogate (a \ud800-\udfff escape without its pair): it is not a character`}
			}
			if isKey {
				if top.keys[s] {
					return &Error{Path: where, Problem: "is given twice: each key once (the value would be ambiguous)"}
				}
				top.keys[s] = true
				top.key, top.expect = s, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && !top.object {
				top.index++
			}
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			if top != nil && !top.object {
				top.index++
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			top = nil
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
		}
		if top != nil && top.object {
			top.expect, top.key = true, "" // a value ended: a key comes next
		}
	}
}

func joinPath(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

// lone reports whether a raw JSON string literal holds a \u escape of a surrogate that is not
// part of a high-low pair.
func lone(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate with no high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if lo, ok := hex4(raw, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		}
		i += 5
	}
	return false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// CheckKeys refuses any object key of body that is not exactly the JSON name of a field of v's
// struct types (see Decode). body must be valid JSON.
func CheckKeys(body []byte, v any) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return &Error{Problem: "the body is not valid JSON"}
	}
	return keys(doc, reflect.TypeOf(v), "")
}

// Decode checks body (Check), then refuses any object key that is not exactly the JSON name of
// a field of v's struct types (at any depth, through pointers, slices and maps; json.RawMessage
// and interface values are left for whoever decodes them), then decodes it into v.
func Decode(body []byte, v any) error {
	if err := Check(body); err != nil {
		return err
	}
	if err := CheckKeys(body, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Error{Path: te.Field, Problem: "has the wrong JSON type (want " + kind(te.Type) + ")"}
		}
		return &Error{Problem: "the body does not fit the request: " + err.Error()}
	}
	return nil
}

var (
	rawMessage  = reflect.TypeOf(json.RawMessage(nil))
	unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
)

func keys(doc any, t reflect.Type, at string) error {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil // decoded by someone else, or by its own UnmarshalJSON
	}
	switch d := doc.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			for k, v := range d {
				if err := keys(v, t.Elem(), joinPath(at, k)); err != nil {
					return err
				}
			}
		case reflect.Struct:
			fields := jsonFields(t)
			names := make([]string, 0, len(d))
			for k := range d {
				names = append(names, k)
			}
			sort.Strings(names) // the same body gives the same answer every time
			for _, k := range names {
				v := d[k]
				ft, ok := fields[k]
				if !ok {
					return &Error{Path: joinPath(at, k), Problem: "is not a known field (keys are case-sensitive)"}
				}
				if err := keys(v, ft, joinPath(at, k)); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, v := range d {
				if err := keys(v, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// jsonFields maps the exact JSON names of a struct's fields (embedded ones included) to types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Uint, reflect.Uint64:
		return "a number"
	}
	return t.String()
}
