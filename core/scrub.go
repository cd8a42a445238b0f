package core

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PieceLen is the length of the shortest piece of a secret that is redacted on its own: no run of
// PieceLen consecutive characters of a secret survives a Scrubber, in any of its forms.
const PieceLen = 8

// A Scrubber removes secrets from text that credsync did not write itself: vendor answers, error
// messages, panics. Vendors echo what they were sent, and not always verbatim: they quote it
// JSON-escaped, URL-encoded, HTML-escaped, base64-encoded or hex-encoded, change its letter case,
// or cut it to its first characters. A Scrubber replaces with Redacted every occurrence of a secret
// and every run of PieceLen or more consecutive characters of one, in any letter case, in each of
// these forms:
//
//   - raw;
//   - JSON-escaped: Go's encoder with and without HTML escaping, with "/" as `\/`, with every
//     non-ASCII character (or everything JSON may escape) as \uXXXX, and escaped twice (a request
//     body quoted inside a JSON string);
//   - URL-encoded: url.QueryEscape (and with %20 for a space), url.PathEscape, JavaScript's
//     encodeURIComponent; %-hex in either case;
//   - HTML-escaped: html.EscapeString, named entities, decimal (&#39;) and hex (&#x27;) numeric
//     entities, with or without numeric entities for non-ASCII characters; and each of them
//     JSON-escaped (an HTML-escaped value quoted in a JSON answer);
//   - base64, standard and URL alphabets, with or without padding, at every alignment (a piece
//     encodes differently depending on its offset modulo 3 in what was encoded), of the secret as
//     given and, up to extrasMaxLen bytes, upper-cased and lower-cased;
//   - hex, of the same.
//
// A secret shorter than PieceLen characters is replaced only where it occurs whole (in every
// form): its pieces are too short to tell apart from ordinary text. Empty secrets are ignored.
// Overlapping and adjacent matches become one Redacted. A match never cuts a UTF-8 character in
// two: it grows to whole characters. Redacting too much is acceptable here; too little is not.
//
// How: every form of every secret is case-folded and each of its PieceLen-byte windows is put in
// a hash set of 64-bit words. Scanning slides a PieceLen-byte window over the case-folded text,
// one lookup per byte, and marks what the windows that hit cover. So building costs
// O(total secret length × forms) and scanning O(len(text)) (plus one substring search per form of
// each short secret). A Scrubber is immutable once built and safe for concurrent use; build it
// once per set of secrets and reuse it.
type Scrubber struct {
	windows windowSet
	whole   [][]byte // case-folded whole forms of the secrets shorter than PieceLen, longest first
}

// NewScrubber builds a Scrubber for secrets. Empty strings are ignored; duplicates cost nothing.
func NewScrubber(secrets ...string) *Scrubber {
	var set windowSet
	var whole [][]byte
	seen := make(map[string]bool, len(secrets))
	for _, sec := range secrets {
		if sec == "" || seen[sec] {
			continue
		}
		seen[sec] = true
		if utf8.RuneCountInString(sec) < PieceLen {
			for _, f := range wholeForms(sec) {
				if w := foldString(nil, f); len(w) > 0 {
					whole = append(whole, w)
				}
			}
			continue
		}
		var buf []byte
		add := func(form string) {
			buf = foldString(buf[:0], form)
			set.addWindows(buf)
		}
		for _, f := range textForms(sec) {
			add(f)
		}
		binaryForms(sec, add)
	}
	s := &Scrubber{windows: set}
	slices.SortFunc(whole, func(a, b []byte) int { return len(b) - len(a) })
	s.whole = slices.CompactFunc(whole, bytes.Equal)
	return s
}

// String returns s with every secret removed. When nothing matched it returns s itself.
func (sc *Scrubber) String(s string) string {
	spans := findSpans(sc, s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(Redacted)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// Bytes returns b with every secret removed. When nothing matched it returns b itself; otherwise
// a new slice (b is never modified).
func (sc *Scrubber) Bytes(b []byte) []byte {
	spans := findSpans(sc, b)
	if len(spans) == 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	prev := 0
	for _, sp := range spans {
		out = append(out, b[prev:sp.start]...)
		out = append(out, Redacted...)
		prev = sp.end
	}
	return append(out, b[prev:]...)
}

// empty reports whether the Scrubber removes nothing.
func (sc *Scrubber) empty() bool { return sc == nil || (sc.windows.n == 0 && len(sc.whole) == 0) }

// Scrub is NewScrubber(secrets...).String(s). It is applied to anything a vendor said before it is
// stored or logged, since vendors echo submitted values back in error bodies. Code that scrubs
// more than once with the same secrets should build a Scrubber once instead.
func Scrub(s string, secrets []string) string {
	if len(secrets) == 0 {
		return s
	}
	return NewScrubber(secrets...).String(s)
}

// ScrubBytes is Scrub for a body.
func ScrubBytes(b []byte, secrets []string) []byte {
	if len(secrets) == 0 {
		return b
	}
	return NewScrubber(secrets...).Bytes(b)
}

// ---- matching

type text interface{ string | []byte }

type span struct{ start, end int }

// findSpans returns the byte ranges of t to redact: sorted, disjoint, not adjacent, on UTF-8
// character boundaries.
func findSpans[T text](sc *Scrubber, t T) []span {
	if sc.empty() || len(t) == 0 {
		return nil
	}
	// The scan lower-cases ASCII on the fly, which is all that folding does to most text.
	spans, nonASCII := matchWindows(&sc.windows, t)
	var folded []byte
	var origin []int
	switch {
	case nonASCII && foldChangesNonASCII(t):
		// Rare: a non-ASCII letter with another case. Scan a folded copy again, and map what
		// matched back to t if folding changed any character's length.
		folded, origin = foldText(t)
		spans, _ = matchWindows(&sc.windows, folded)
	case len(sc.whole) > 0:
		folded = make([]byte, len(t))
		for i := 0; i < len(t); i++ {
			folded[i] = lowerASCII[t[i]]
		}
	}
	spans = matchWhole(spans, sc.whole, folded)
	if origin != nil {
		for i, sp := range spans {
			spans[i] = span{origin[sp.start], originEnd(origin, sp.end)}
		}
	}
	for i := range spans {
		spans[i] = toRuneBoundaries(t, spans[i])
	}
	return mergeSpans(spans)
}

// matchWhole adds to spans the occurrences of the short secrets' forms in folded (the text
// case-folded) and sorts them.
func matchWhole(spans []span, whole [][]byte, folded []byte) []span {
	sorted := true
	for _, w := range whole {
		for off := 0; off+len(w) <= len(folded); {
			i := bytes.Index(folded[off:], w)
			if i < 0 {
				break
			}
			spans = append(spans, span{off + i, off + i + len(w)})
			sorted = false
			off += i + 1
		}
	}
	if !sorted {
		slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	}
	return spans
}

// matchWindows slides a PieceLen-byte window over t, lower-casing ASCII as it goes, and returns
// the runs the windows found in the set cover, merged, and whether t holds a non-ASCII byte.
func matchWindows[T text](set *windowSet, t T) (spans []span, nonASCII bool) {
	if set.n == 0 || len(t) < PieceLen {
		for i := 0; i < len(t); i++ {
			if t[i] >= utf8.RuneSelf {
				return nil, true
			}
		}
		return nil, false
	}
	var w uint64
	var seen byte // every byte of t, or-ed: its top bit tells whether any is non-ASCII
	for i := 0; i < PieceLen; i++ {
		seen |= t[i]
		w |= uint64(lowerASCII[t[i]]) << (8 * i)
	}
	filter := set.filter
	for i := 0; ; i++ {
		// The filter is checked here rather than in has: that keeps the loop tight.
		if f := (w * hashMul) >> filterShift; filter[f/64]&(1<<(f%64)) != 0 && set.has(w) {
			if n := len(spans); n > 0 && i <= spans[n-1].end {
				spans[n-1].end = i + PieceLen
			} else {
				spans = append(spans, span{i, i + PieceLen})
			}
		}
		if i+PieceLen >= len(t) {
			return spans, seen >= utf8.RuneSelf
		}
		c := t[i+PieceLen]
		seen |= c
		w = w>>8 | uint64(lowerASCII[c])<<(8*(PieceLen-1))
	}
}

func mergeSpans(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// toRuneBoundaries widens sp so that it cuts no valid UTF-8 character of t in two.
func toRuneBoundaries[T text](t T, sp span) span {
	if sp.start < len(t) && !utf8.RuneStart(t[sp.start]) {
		sp.start = runeStart(t, sp.start)
	}
	if sp.end < len(t) && !utf8.RuneStart(t[sp.end]) {
		if rs := runeStart(t, sp.end); rs < sp.end {
			_, size := decodeRune(t, rs)
			sp.end = rs + size
		}
	}
	return sp
}

// runeStart returns where the valid character that holds byte i of t starts, or i if none does.
func runeStart[T text](t T, i int) int {
	for back := 1; back < utf8.UTFMax && i-back >= 0; back++ {
		if utf8.RuneStart(t[i-back]) {
			if _, size := decodeRune(t, i-back); size > back {
				return i - back
			}
			return i
		}
	}
	return i
}

func decodeRune[T text](t T, i int) (rune, int) {
	var b [utf8.UTFMax]byte
	n := copy(b[:], t[i:])
	return utf8.DecodeRune(b[:n])
}

// ---- case folding

// lowerASCII lower-cases ASCII letters and leaves every other byte alone.
var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

// foldRune maps a character and its other cases to one of them: Go's strings.ToUpper and
// ToLower work character by character, and ToLower(ToUpper(r)) joins all of r's cases
// (ı, I and i; ſ, S and s; the Kelvin sign K, K and k).
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(lowerASCII[r])
	}
	return unicode.ToLower(unicode.ToUpper(r))
}

// foldString appends s case-folded to dst. Invalid UTF-8 bytes are kept as they are.
func foldString(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			dst = append(dst, lowerASCII[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[i])
		} else {
			dst = utf8.AppendRune(dst, foldRune(r))
		}
		i += size
	}
	return dst
}

// foldChangesNonASCII reports whether folding t changes anything but ASCII letters.
func foldChangesNonASCII[T text](t T) bool {
	for i := 0; i < len(t); {
		if t[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := decodeRune(t, i)
		if !(r == utf8.RuneError && size == 1) && foldRune(r) != r {
			return true
		}
		i += size
	}
	return false
}

// foldText returns t case-folded and, when that changed the length of any character, origin:
// origin[j] is the offset in t of the character that gave byte j, and origin[len(folded)] = len(t).
func foldText[T text](t T) (folded []byte, origin []int) {
	folded = make([]byte, 0, len(t))
	for i := 0; i < len(t); {
		if c := t[i]; c < utf8.RuneSelf {
			folded = append(folded, lowerASCII[c])
			if origin != nil {
				origin = append(origin, i)
			}
			i++
			continue
		}
		r, size := decodeRune(t, i)
		n := len(folded)
		if r == utf8.RuneError && size == 1 {
			folded = append(folded, t[i])
		} else {
			folded = utf8.AppendRune(folded, foldRune(r))
		}
		if origin == nil && len(folded)-n != size {
			// The first change of length: record the origin of everything so far (identity).
			origin = make([]int, n, len(t)+1)
			for j := range origin {
				origin[j] = j
			}
		}
		if origin != nil {
			for range len(folded) - n {
				origin = append(origin, i)
			}
		}
		i += size
	}
	if origin != nil {
		origin = append(origin, len(t))
	}
	return folded, origin
}

// originEnd maps the end of a folded range to the end, in the original, of the character that
// holds the range's last byte.
func originEnd(origin []int, end int) int {
	j := end
	for j < len(origin)-1 && origin[j] == origin[end-1] {
		j++
	}
	return origin[j]
}

// ---- the set of windows

// windowSet is an open-addressing hash set of PieceLen-byte windows read as little-endian words.
// Zero marks an empty slot; the all-zero window is kept apart.
type windowSet struct {
	filter  *[filterWords]uint64 // bit h>>filterShift of the hash h of every window: most misses stop here, in L1
	slots   []uint64
	shift   uint
	n       int
	hasZero bool
}

const (
	filterBits  = 18
	filterWords = 1 << filterBits / 64
	filterShift = 64 - filterBits
)

// add puts w in the set. The forms of a secret share most of their windows (a secret without
// special characters is its own JSON, URL and HTML form), so the table grows with the distinct
// windows, and is kept at most half full.
func (s *windowSet) add(w uint64) {
	if s.filter == nil {
		s.filter = new([filterWords]uint64)
		s.slots, s.shift = make([]uint64, 1024), 64-10
	}
	f := (w * hashMul) >> filterShift
	s.filter[f/64] |= 1 << (f % 64)
	if w == 0 {
		s.n += boolInt(!s.hasZero)
		s.hasZero = true
		return
	}
	if s.insert(w) && 2*s.n > len(s.slots) {
		old, n := s.slots, s.n
		s.slots, s.shift = make([]uint64, 2*len(old)), s.shift-1
		for _, o := range old {
			if o != 0 {
				s.insert(o)
			}
		}
		s.n = n
	}
}

// insert puts w (not zero) in the table and reports whether it was new.
func (s *windowSet) insert(w uint64) bool {
	mask := uint64(len(s.slots) - 1)
	h := s.hash(w)
	for s.slots[h] != 0 {
		if s.slots[h] == w {
			return false
		}
		h = (h + 1) & mask
	}
	s.slots[h] = w
	s.n++
	return true
}

// addWindows adds every PieceLen-byte window of b, as a little-endian word.
func (s *windowSet) addWindows(b []byte) {
	if len(b) < PieceLen {
		return
	}
	var w uint64
	for i := 0; i < PieceLen; i++ {
		w |= uint64(b[i]) << (8 * i)
	}
	s.add(w)
	for i := PieceLen; i < len(b); i++ {
		w = w>>8 | uint64(b[i])<<(8*(PieceLen-1))
		s.add(w)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const hashMul = 0x9E3779B97F4A7C15

func (s *windowSet) hash(w uint64) uint64 { return (w * hashMul) >> s.shift }

func (s *windowSet) has(w uint64) bool {
	if w == 0 {
		return s.hasZero
	}
	mask := uint64(len(s.slots) - 1)
	for h := s.hash(w); ; h = (h + 1) & mask {
		switch s.slots[h] {
		case w:
			return true
		case 0:
			return false
		}
	}
}

// ---- the forms of a secret

// textForms returns the secret as vendors quote it in text: raw, JSON-, URL- and HTML-escaped.
// Each of them maps a piece of the secret to the matching piece of the form, so the windows of
// the form's encoding of the whole secret cover its encoding of every piece.
func textForms(s string) []string {
	forms := []string{s}
	for _, escapeHTML := range []bool{true, false} {
		j := jsonString(s, escapeHTML)
		a := jsonASCII(j)
		forms = append(forms, j, jsonSlash(j), a, jsonSlash(a), jsonString(j, escapeHTML))
	}
	forms = append(forms, jsonEveryEscape(s))
	q := url.QueryEscape(s)
	forms = append(forms, q, strings.ReplaceAll(q, "+", "%20"), url.PathEscape(s), uriComponent(s))
	htmlForms := []string{html.EscapeString(s), htmlEscape(s, htmlDecimal, true), htmlEscape(s, htmlHex, true)}
	for _, e := range htmlStyles {
		htmlForms = append(htmlForms, htmlEscape(s, e, false))
	}
	for _, h := range htmlForms {
		// An HTML-escaped value quoted in a JSON answer: & becomes \u0026 with Go's encoder.
		forms = append(forms, h, jsonString(h, true), jsonString(h, false))
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// extrasMaxLen bounds the secrets that get the extra binary forms (base64 tails, and the
// encodings of the secret upper- and lower-cased). Passwords and tokens are shorter; a private
// key (1.7 KB for RSA 2048) is longer, and there the extras would triple the windows, and with
// them the time and memory to build a Scrubber, for what no vendor does to a key. Without the
// tails the most a base64-encoded cut of a secret keeps is its last one or two bytes.
const extrasMaxLen = 256

// binaryForms passes to add the encodings of the secret's bytes: hex, and base64 at each of the
// three alignments with both alphabets; for a secret of up to extrasMaxLen bytes also of the
// secret upper-cased and lower-cased (a vendor that changes the case before encoding).
func binaryForms(s string, add func(string)) {
	encs := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding}
	variants := []string{s}
	for _, v := range []string{strings.ToUpper(s), strings.ToLower(s)} {
		if len(s) <= extrasMaxLen && !slices.Contains(variants, v) {
			variants = append(variants, v)
		}
	}
	for vi, v := range variants {
		add(hex.EncodeToString([]byte(v)))
		for k := 0; k < 3 && k < len(v); k++ {
			// The windows of the encoding of v[k:] (padding included, so unpadded too) hold every
			// window of the encoding of a piece starting at k, k+3, k+6... except near the piece's
			// end when its length is not a multiple of 3: there the last group is encoded with
			// zero bits and padding. Those tails are added for the secret as given, if it is at most
			// extrasMaxLen bytes long.
			for _, e := range encs {
				add(e.EncodeToString([]byte(v[k:])))
			}
			if vi > 0 || len(v) > extrasMaxLen {
				continue
			}
			for end := k + 1; end < len(v); end++ {
				r := (end - k) % 3
				if r == 0 {
					continue
				}
				from := max(end-r-6, k) // two whole groups before the tail: 8 characters
				for _, e := range encs {
					add(e.EncodeToString([]byte(v[from:end])))
				}
			}
		}
	}
}

// wholeForms returns every form of a short secret, for whole matches.
func wholeForms(s string) []string {
	forms := textForms(s)
	variants := []string{s, strings.ToUpper(s), strings.ToLower(s)}
	for _, v := range variants {
		forms = append(forms, hex.EncodeToString([]byte(v)))
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			forms = append(forms, e.EncodeToString([]byte(v)))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// jsonString is s as Go's encoder writes it inside a JSON string, without the quotes.
func jsonString(s string, escapeHTML bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s) // a string always encodes
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return string(b[1 : len(b)-1])
}

// jsonSlash escapes "/" as `\/` (PHP's json_encode, some Java encoders).
func jsonSlash(j string) string { return strings.ReplaceAll(j, "/", `\/`) }

// jsonASCII escapes every non-ASCII character of an encoded JSON string as \uXXXX, with
// surrogate pairs beyond U+FFFF (Python's json.dumps, PHP's json_encode).
func jsonASCII(j string) string {
	var b strings.Builder
	for _, r := range j {
		writeJSONRune(&b, r, r >= utf8.RuneSelf)
	}
	return b.String()
}

// jsonEveryEscape escapes as \uXXXX every character some JSON encoder escapes that way: controls,
// quotes, backslash, <>&'/, DEL and everything non-ASCII.
func jsonEveryEscape(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		writeJSONRune(&b, r, r < 0x20 || r >= 0x7f || strings.ContainsRune(`"\<>&'/`, r))
	}
	return b.String()
}

func writeJSONRune(b *strings.Builder, r rune, escape bool) {
	switch {
	case !escape:
		b.WriteRune(r)
	case r > 0xFFFF:
		r1, r2 := utf16Pair(r)
		fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
	default:
		fmt.Fprintf(b, `\u%04x`, r)
	}
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// uriComponent is JavaScript's encodeURIComponent.
func uriComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// htmlStyle is how one HTML escaper writes < > & ' ".
type htmlStyle [5]string

var (
	htmlNamed   = htmlStyle{"&lt;", "&gt;", "&amp;", "&apos;", "&quot;"}
	htmlPython  = htmlStyle{"&lt;", "&gt;", "&amp;", "&#x27;", "&quot;"} // Python's html.escape
	htmlPHP     = htmlStyle{"&lt;", "&gt;", "&amp;", "&#039;", "&quot;"} // PHP's htmlspecialchars
	htmlDecimal = htmlStyle{"&#60;", "&#62;", "&#38;", "&#39;", "&#34;"}
	htmlHex     = htmlStyle{"&#x3c;", "&#x3e;", "&#x26;", "&#x27;", "&#x22;"}
	htmlStyles  = []htmlStyle{htmlNamed, htmlPython, htmlPHP, htmlDecimal, htmlHex}
)

// htmlEscape escapes < > & ' " in style e and, with nonASCII, every non-ASCII character as a
// numeric entity of the same base (decimal for the decimal style, hex otherwise).
func htmlEscape(s string, e htmlStyle, nonASCII bool) string {
	var b strings.Builder
	for _, r := range s {
		if i := strings.IndexRune(`<>&'"`, r); i >= 0 {
			b.WriteString(e[i])
		} else if nonASCII && r >= utf8.RuneSelf {
			if e == htmlDecimal {
				fmt.Fprintf(&b, "&#%d;", r)
			} else {
				fmt.Fprintf(&b, "&#x%x;", r)
			}
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
