// Package password generates the passwords credsync sets on source database users when it
// rotates them itself.
//
// A password is drawn from crypto/rand, one character at a time by rejection sampling (a random
// byte outside the largest multiple of the alphabet's size is thrown away), so every character of
// the alphabet is equally likely: no modulo bias. The alphabets:
//
//   - by default letters and digits (A-Z a-z 0-9: 62 characters, about 5.95 bits each; 32 of them
//     make about 190 bits). Every database vendor accepts them, and they need no quoting or
//     escaping in SQL, in a URL or key=value DSN, in JSON, YAML, a shell or an environment file;
//   - with Symbols, also the six characters of SymbolSet, "-_.~!*". The first four are the
//     "unreserved" characters of RFC 3986 and the last two are sub-delimiters that RFC 3986
//     allows unencoded in a URL's userinfo, so a password that holds them still fits in a
//     postgres:// or mysql:// URL unencoded; none of them is a quote, a backslash, a space, "@",
//     "/", ":", "%", ";", "=", "{", "}", "#", "$" or "&", which break DSNs, ODBC connection
//     strings, shell quoting or SQL literals, and which some vendors refuse (Amazon RDS refuses
//     "/", "@", '"' and space in a master password).
//
// Password policies of vendors and of companies often demand characters of several classes. So
// a password holds at least one upper-case letter, one lower-case letter, one digit and, with
// Symbols, one symbol: a candidate that lacks a class is thrown away whole and drawn again, which
// keeps every acceptable password equally likely (rather than planting the missing class at a
// chosen position). And its first character is a letter: Oracle wants that of an unquoted
// password, and a leading "-" reads as a command-line flag, "!" as a YAML tag, "*" as a YAML
// alias and "~" as a home directory in a shell.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/credsync/credsync/core"
)

const (
	// DefaultLength is the length of a password when the policy does not say.
	DefaultLength = 32
	// MinLength and MaxLength bound a policy's length. Below 16 characters the letters-and-digits
	// alphabet gives under 96 bits. Above 128 nothing is gained (32 characters already give about
	// 190 bits), and some systems cap the length of a password.
	MinLength = 16
	MaxLength = 128
)

// The character classes.
const (
	Upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Lower  = "abcdefghijklmnopqrstuvwxyz"
	Digits = "0123456789"
	// SymbolSet is the symbols a policy with Symbols adds: see the package documentation.
	SymbolSet = "-_.~!*"
)

// Policy says what a generated password looks like. The zero Policy is the default: 32 letters
// and digits.
type Policy struct {
	// Length is the number of characters, MinLength..MaxLength; 0 means DefaultLength.
	Length int `json:"length,omitempty" yaml:"length,omitempty"`
	// Symbols adds SymbolSet to the letters and digits.
	Symbols bool `json:"symbols,omitempty" yaml:"symbols,omitempty"`
}

// Validate reports whether the policy is usable, saying what is wrong with it.
func (p Policy) Validate() error {
	if p.Length != 0 && (p.Length < MinLength || p.Length > MaxLength) {
		return fmt.Errorf("password length must be between %d and %d characters (0 means %d), got %d",
			MinLength, MaxLength, DefaultLength, p.Length)
	}
	return nil
}

// length is the effective length.
func (p Policy) length() int {
	if p.Length == 0 {
		return DefaultLength
	}
	return p.Length
}

// Alphabet is every character a password of the policy may hold.
func (p Policy) Alphabet() string {
	if p.Symbols {
		return Upper + Lower + Digits + SymbolSet
	}
	return Upper + Lower + Digits
}

// maxAttempts bounds the redraws of candidates that lack a class. The likeliest policy to need a
// redraw (16 characters with symbols) yields an acceptable candidate with probability about 2/3,
// so 1000 failed draws in a row mean a broken random source, not bad luck.
const maxAttempts = 1000

// Generate returns a new password under the policy, from crypto/rand.
func Generate(p Policy) (core.Secret, error) {
	v, err := generate(p, rand.Reader)
	if err != nil {
		return core.Secret{}, err
	}
	return core.NewSecret(v), nil
}

func generate(p Policy, random io.Reader) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	src := &byteSource{r: random}
	alphabet := p.Alphabet()
	letters := Upper + Lower
	buf := make([]byte, p.length())
	for range maxAttempts {
		c, err := src.pick(letters)
		if err != nil {
			return "", err
		}
		buf[0] = c
		for i := 1; i < len(buf); i++ {
			if buf[i], err = src.pick(alphabet); err != nil {
				return "", err
			}
		}
		if hasClasses(buf, p.Symbols) {
			return string(buf), nil
		}
	}
	return "", errors.New("password: the random source keeps yielding passwords that lack a character class")
}

func hasClasses(b []byte, symbols bool) bool {
	var upper, lower, digit, symbol bool
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
			digit = true
		case strings.IndexByte(SymbolSet, c) >= 0:
			symbol = true
		}
	}
	return upper && lower && digit && (symbol || !symbols)
}

// byteSource hands out random bytes, reading them in batches.
type byteSource struct {
	r   io.Reader
	buf [256]byte
	n   int // bytes left, at the end of buf
}

func (s *byteSource) next() (byte, error) {
	if s.n == 0 {
		if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
			return 0, fmt.Errorf("password: read random bytes: %w", err)
		}
		s.n = len(s.buf)
	}
	s.n--
	return s.buf[len(s.buf)-1-s.n], nil
}

// pick returns a uniformly chosen character of alphabet (at most 256 characters): a random byte
// b is used only when it is below the largest multiple of len(alphabet) that fits in a byte, and
// then b mod len(alphabet) is uniform.
func (s *byteSource) pick(alphabet string) (byte, error) {
	n := len(alphabet)
	limit := 256 - 256%n
	for {
		b, err := s.next()
		if err != nil {
			return 0, err
		}
		if int(b) < limit {
			return alphabet[int(b)%n], nil
		}
	}
}
