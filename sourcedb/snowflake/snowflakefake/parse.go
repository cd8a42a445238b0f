package snowflakefake

import (
	"errors"
	"strings"
)

// The fake's reading of the statements it understands. Tokens: words (keywords and unquoted
// identifiers), the number 1, double-quoted identifiers ("" is a quote; not empty), single-quoted
// strings ('' is a quote; a backslash, which Snowflake treats as an escape, is refused), and =.

type tokKind int

const (
	tWord tokKind = iota
	tNumber
	tQuoted
	tString
	tEquals
)

type token struct {
	kind tokKind
	text string // a word as written; a quoted identifier or string unquoted
}

var errSyntax = errors.New("syntax error")

func tokenize(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=':
			out = append(out, token{kind: tEquals, text: "="})
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(s) {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				if c == '\'' && s[j] == '\\' {
					return nil, errSyntax
				}
				b.WriteByte(s[j])
				j++
			}
			if !closed {
				return nil, errSyntax
			}
			k := tString
			if c == '"' {
				k = tQuoted
				if b.Len() == 0 {
					return nil, errSyntax
				}
			}
			out = append(out, token{kind: k, text: b.String()})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			out = append(out, token{kind: tNumber, text: s[i:j]})
			i = j
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, token{kind: tWord, text: s[i:j]})
			i = j
		default:
			return nil, errSyntax
		}
	}
	return out, nil
}

type parsed struct {
	kind    string // select1, desc, set, unset
	user    string // as stored: a quoted identifier exactly, an unquoted one upper-cased
	slot    string
	literal string
}

func parse(stmt string) (parsed, error) {
	toks, err := tokenize(stmt)
	if err != nil {
		return parsed{}, err
	}
	kw := func(i int, words ...string) bool {
		if i >= len(toks) || toks[i].kind != tWord {
			return false
		}
		for _, w := range words {
			if strings.EqualFold(toks[i].text, w) {
				return true
			}
		}
		return false
	}
	ident := func(i int) (string, bool) {
		if i >= len(toks) {
			return "", false
		}
		switch toks[i].kind {
		case tQuoted:
			return toks[i].text, true
		case tWord:
			return strings.ToUpper(toks[i].text), true
		}
		return "", false
	}
	slot := func(i int) (string, bool) {
		switch {
		case kw(i, Slot1):
			return Slot1, true
		case kw(i, Slot2):
			return Slot2, true
		}
		return "", false
	}
	switch {
	case len(toks) == 2 && kw(0, "SELECT") && toks[1].kind == tNumber && toks[1].text == "1":
		return parsed{kind: "select1"}, nil
	case len(toks) == 3 && kw(0, "DESC", "DESCRIBE") && kw(1, "USER"):
		if u, ok := ident(2); ok {
			return parsed{kind: "desc", user: u}, nil
		}
	case len(toks) == 7 && kw(0, "ALTER") && kw(1, "USER") && kw(3, "SET") && toks[5].kind == tEquals && toks[6].kind == tString:
		u, ok1 := ident(2)
		sl, ok2 := slot(4)
		if ok1 && ok2 {
			return parsed{kind: "set", user: u, slot: sl, literal: toks[6].text}, nil
		}
	case len(toks) == 5 && kw(0, "ALTER") && kw(1, "USER") && kw(3, "UNSET"):
		u, ok1 := ident(2)
		sl, ok2 := slot(4)
		if ok1 && ok2 {
			return parsed{kind: "unset", user: u, slot: sl}, nil
		}
	}
	return parsed{}, errSyntax
}
