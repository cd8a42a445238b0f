package core_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/credsync/credsync/core"
	"github.com/stretchr/testify/require"
)

// The checker below is written apart from core's scrubber: it re-encodes every piece of
// core.PieceLen characters of the secret in every form a vendor may quote it in and searches the
// output for it, case-insensitively, and it decodes every base64 and hex run of the output at
// every alignment and looks for PieceLen consecutive bytes of the secret in what comes out.

// pieces returns every run of core.PieceLen characters of secret (the whole secret if shorter).
func pieces(secret string) []string {
	r := []rune(secret)
	if len(r) < core.PieceLen {
		return []string{secret}
	}
	var out []string
	for i := 0; i+core.PieceLen <= len(r); i++ {
		out = append(out, string(r[i:i+core.PieceLen]))
	}
	return out
}

func jsonOf(s string, escapeHTML bool) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(escapeHTML)
	_ = e.Encode(s)
	out := strings.TrimSpace(b.String())
	return out[1 : len(out)-1]
}

// jsonUnicode writes every non-ASCII character of a JSON string as \uXXXX (surrogate pairs
// beyond U+FFFF).
func jsonUnicode(s string) string {
	var b strings.Builder
	for _, r := range jsonOf(s, false) {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04X`, u)
		}
	}
	return b.String()
}

var (
	decimalEntities = strings.NewReplacer("&", "&#38;", "<", "&#60;", ">", "&#62;", "'", "&#39;", `"`, "&#34;")
	hexEntities     = strings.NewReplacer("&", "&#x26;", "<", "&#x3C;", ">", "&#x3E;", "'", "&#x27;", `"`, "&#x22;")
)

// encodings returns p in every form the checker knows, by name.
func encodings(p string) map[string]string {
	m := map[string]string{
		"raw":             p,
		"json":            jsonOf(p, true),
		"json-no-html":    jsonOf(p, false),
		"json-slash":      strings.ReplaceAll(jsonOf(p, false), "/", `\/`),
		"json-slash-html": strings.ReplaceAll(jsonOf(p, true), "/", `\/`),
		"json-twice":      jsonOf(jsonOf(p, true), true),
		"html-in-json":    jsonOf(html.EscapeString(p), true),
		"json-unicode":    jsonUnicode(p),
		"query":           url.QueryEscape(p),
		"path":            url.PathEscape(p),
		"html":            html.EscapeString(p),
		"html-decimal":    decimalEntities.Replace(p),
		"html-hex":        hexEntities.Replace(p),
		"hex":             hex.EncodeToString([]byte(p)),
		"b64-std":         base64.StdEncoding.EncodeToString([]byte(p)),
		"b64-url":         base64.URLEncoding.EncodeToString([]byte(p)),
		"b64-raw-std":     base64.RawStdEncoding.EncodeToString([]byte(p)),
		"b64-raw-url":     base64.RawURLEncoding.EncodeToString([]byte(p)),
		"b64-std-upper":   base64.StdEncoding.EncodeToString([]byte(strings.ToUpper(p))),
		"hex-upper-text":  hex.EncodeToString([]byte(strings.ToUpper(p))),
	}
	return m
}

func isB64(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/-_", c) >= 0
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func runs(s string, in func(byte) bool) []string {
	var out []string
	for i := 0; i < len(s); {
		if !in(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && in(s[j]) {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// decodedHolds reports whether decoded holds core.PieceLen consecutive bytes of secret (or all of
// a shorter secret).
func decodedHolds(decoded []byte, secret string) bool {
	n := min(core.PieceLen, len(secret))
	for i := 0; i+n <= len(secret); i++ {
		if bytes.Contains(decoded, []byte(secret[i:i+n])) {
			return true
		}
	}
	return false
}

// leak returns what of secret the checker finds in out ("" if nothing).
func leak(out, secret string) string {
	lower := strings.ToLower(out)
	for _, p := range pieces(secret) {
		for name, e := range encodings(p) {
			if strings.Contains(lower, strings.ToLower(e)) {
				return fmt.Sprintf("%s of %q (%q)", name, p, e)
			}
		}
	}
	for _, r := range runs(out, isB64) {
		std := strings.NewReplacer("-", "+", "_", "/").Replace(r)
		for off := 0; off < 4 && off < len(std); off++ {
			s := std[off:]
			if len(s)%4 == 1 {
				s = s[:len(s)-1]
			}
			if b, err := base64.RawStdEncoding.DecodeString(s); err == nil && decodedHolds(b, secret) {
				return fmt.Sprintf("base64 at offset %d in %q", off, r)
			}
		}
	}
	for _, r := range runs(out, isHex) {
		for off := 0; off < 2 && off < len(r); off++ {
			s := r[off:]
			s = s[:len(s)/2*2]
			if b, err := hex.DecodeString(s); err == nil && (decodedHolds(b, secret) || decodedHolds(b, strings.ToUpper(secret)) || decodedHolds(b, strings.ToLower(secret))) {
				return fmt.Sprintf("hex at offset %d in %q", off, r)
			}
		}
	}
	return ""
}

var scrubSecrets = map[string]string{
	"ascii":   "Sup3rS3cret-Passw0rd-2024-xyzzy",
	"special": `P"<>&'/%+= é-日本-🔑-\Zz9_tail-of-it`,
	"pem":     "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n",
	// Longer than extrasMaxLen: no base64 tails, no encodings of its upper- or lower-cased form.
	"long": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
		"QyNTUxOQAAACDx7YbC0xJ2KqM9Xh5nQ4V7pW3s8dF1aZ6kL0oR2tUyHwAAAJgq3v1sKt79\nbAAAAAtzc2gtZWQyNTUxOQAAACDx7YbC0xJ2KqM9Xh5nQ4V7pW3s8dF1aZ6kL0oR2tUy\n" +
		"HwAAAEBm+/R9cT2wQ5eL8vN1kZ3xY7uJ4aP0sD6fG9hK2lM1nPx7YbC0xJ2KqM9Xh5nQ4V\n-----END OPENSSH PRIVATE KEY-----\n",
}

// runePiece returns the characters [from, to) of s.
func runePiece(s string, from, to int) string {
	r := []rune(s)
	return string(r[from:min(to, len(r))])
}

func b64At(enc *base64.Encoding, offset int) func(string) string {
	return func(p string) string { return enc.EncodeToString([]byte("\x01\x02"[:offset] + p)) }
}

var scrubForms = []struct {
	name string
	enc  func(string) string
}{
	{"raw", func(p string) string { return p }},
	{"upper", strings.ToUpper},
	{"lower", strings.ToLower},
	{"json", func(p string) string { return jsonOf(p, true) }},
	{"json-no-html", func(p string) string { return jsonOf(p, false) }},
	{"json-slash", func(p string) string { return strings.ReplaceAll(jsonOf(p, true), "/", `\/`) }},
	{"json-unicode", jsonUnicode},
	{"json-twice", func(p string) string { return jsonOf(jsonOf(p, true), true) }},
	{"query", url.QueryEscape},
	{"path", url.PathEscape},
	{"query-upper", func(p string) string { return strings.ToUpper(url.QueryEscape(p)) }},
	{"html", html.EscapeString},
	{"html-decimal", decimalEntities.Replace},
	{"html-hex", hexEntities.Replace},
	{"html-in-json", func(p string) string { return jsonOf(html.EscapeString(p), true) }},
	{"hex", func(p string) string { return hex.EncodeToString([]byte(p)) }},
	{"hex-upper", func(p string) string { return strings.ToUpper(hex.EncodeToString([]byte(p))) }},
	{"in-a-word", func(p string) string { return "xyz" + p + "xyz" }},
}

func init() {
	for off := 0; off < 3; off++ {
		for _, e := range []struct {
			name string
			enc  *base64.Encoding
		}{{"b64-std", base64.StdEncoding}, {"b64-url", base64.URLEncoding}, {"b64-raw-std", base64.RawStdEncoding}, {"b64-raw-url", base64.RawURLEncoding}} {
			scrubForms = append(scrubForms, struct {
				name string
				enc  func(string) string
			}{fmt.Sprintf("%s@%d", e.name, off), b64At(e.enc, off)})
		}
	}
}

func TestScrubberForms(t *testing.T) {
	const before, after = "vendor said: «", "» (code 42) ends here"
	for sname, secret := range scrubSecrets {
		sc := core.NewScrubber(secret)
		n := utf8.RuneCountInString(secret)
		cuts := map[string]string{
			"whole":    secret,
			"prefix8":  runePiece(secret, 0, 8),
			"prefix12": runePiece(secret, 0, 12),
			"prefix20": runePiece(secret, 0, 20),
			"middle":   runePiece(secret, n/2-5, n/2+5),
			"suffix9":  runePiece(secret, n-9, n),
		}
		for cname, cut := range cuts {
			for _, f := range scrubForms {
				in := before + f.enc(cut) + after
				require.NotEmpty(t, leak(in, secret), "%s/%s/%s: the checker does not see the secret in %q", sname, cname, f.name, in)
				for _, out := range []string{sc.String(in), string(sc.Bytes([]byte(in)))} {
					if l := leak(out, secret); l != "" {
						t.Errorf("%s/%s/%s: %s survives in %q", sname, cname, f.name, l, out)
					}
					if !strings.HasPrefix(out, before) || !strings.HasSuffix(out, after) || !strings.Contains(out, core.Redacted) {
						t.Errorf("%s/%s/%s: the text around the secret did not survive: %q", sname, cname, f.name, out)
					}
					if !utf8.ValidString(out) {
						t.Errorf("%s/%s/%s: invalid UTF-8 out of valid: %q", sname, cname, f.name, out)
					}
				}
			}
		}
	}
}

// TestScrubberEmbedded: the secret inside a longer encoded document (a body base64-encoded whole,
// at every offset), and many secrets at once.
func TestScrubberEmbedded(t *testing.T) {
	var all []string
	for _, s := range scrubSecrets {
		all = append(all, s)
	}
	sc := core.NewScrubber(all...)
	for _, secret := range all {
		for pad := 0; pad < 3; pad++ {
			doc := `{"error":"bad value` + strings.Repeat("!", pad) + `: ` + secret + `", "hint": "x"}`
			for name, enc := range map[string]string{
				"b64":     base64.StdEncoding.EncodeToString([]byte(doc)),
				"b64-url": base64.RawURLEncoding.EncodeToString([]byte(doc)),
				"hex":     hex.EncodeToString([]byte(doc)),
				"query":   url.QueryEscape(doc),
				"json":    jsonOf(doc, true),
			} {
				out := sc.String("body=" + enc + " end")
				for _, s := range all {
					if l := leak(out, s); l != "" {
						t.Errorf("%s pad %d: %s survives in %q", name, pad, l, out)
					}
				}
				require.True(t, strings.HasPrefix(out, "body=") && strings.HasSuffix(out, " end"), out)
			}
		}
	}
}

func TestScrubberLeavesOrdinaryTextAlone(t *testing.T) {
	sc := core.NewScrubber("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n",
		"3f1c9a0d5e7b2468ace0f13579bdf02468ace013", "Sup3rS3cret-Passw0rd-2024-xyzzy", "glpat-AbCdEfGhIjKlMnOpQrSt")
	for _, msg := range []string{
		`{"error":{"code":"INVALID_CREDENTIALS","message":"the \"type\": \"service_account\" document for project acme-analytics (loader@acme-analytics.iam.gserviceaccount.com) was refused by https://oauth2.googleapis.com/token"}}`,
		"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The upstream server at felt.com did not answer in time. Request id 7f3e2c1a-9b8d-4e6f-a5c4-3b2a1d0e9f8c.</p></body></html>",
		"password authentication failed for user \"analytics_loader\" — connexion refusée, réessayez. Kelvin: 3 K",
		strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789. ", 50),
	} {
		require.Equal(t, msg, sc.String(msg))
		b := []byte(msg)
		require.Same(t, &b[0], &sc.Bytes(b)[0], "nothing to redact: the same slice comes back")
	}
}

func TestScrubberShortSecrets(t *testing.T) {
	sc := core.NewScrubber("ab<1Z", "")
	for _, in := range []string{"ab<1Z", "AB<1z", `ab\u003c1Z`, "ab%3C1Z", "ab&lt;1Z", "ab&#60;1Z",
		base64.StdEncoding.EncodeToString([]byte("ab<1Z")), hex.EncodeToString([]byte("ab<1Z"))} {
		require.Equal(t, "x "+core.Redacted+" y", sc.String("x "+in+" y"), in)
	}
	// Pieces of a short secret are left: they are ordinary text.
	require.Equal(t, "ab<1 and b<1Z", sc.String("ab<1 and b<1Z"))
	require.Equal(t, "nothing", core.NewScrubber().String("nothing"))
	require.Equal(t, "nothing", core.NewScrubber("").String("nothing"))
	var nilScrubber *core.Scrubber
	require.Equal(t, "nothing", nilScrubber.String("nothing"))
}

func TestScrubberMergesAndKeepsCharacters(t *testing.T) {
	a, b := "AAAAbbbbCCCCdddd", "eeeeFFFFggggHHHH"
	sc := core.NewScrubber(a, b)
	require.Equal(t, "<"+core.Redacted+">", sc.String("<"+a+b+">"), "adjacent secrets are one redaction")
	require.Equal(t, "<"+core.Redacted+">", sc.String("<"+a[:10]+a[4:]+">"), "overlapping pieces are one redaction")
	require.Equal(t, "<"+core.Redacted+"|"+core.Redacted+">", sc.String("<"+a+"|"+b+">"))

	// A secret of two-byte characters: its byte windows may start inside a character; what is
	// redacted is whole characters.
	sec := "éàüöéàüöéàüö"
	sc = core.NewScrubber(sec)
	for _, in := range []string{"«" + sec[1:] + "»", "«é" + sec[3:15] + "ß»", "Ё" + strings.ToUpper(sec) + "Ё"} {
		out := sc.String(in)
		require.True(t, utf8.ValidString(out), "%q -> %q", in, out)
		require.Contains(t, out, core.Redacted, in)
		require.Empty(t, leak(out, sec), "%q -> %q", in, out)
	}
	require.Equal(t, "«"+core.Redacted+"»", sc.String("«"+sec+"»"))

	// Folding that changes a character's length in the text (the Kelvin sign, dotted İ) must
	// still map the redaction to the right bytes.
	sec = "kelvin-and-İstanbul-ſecret"
	sc = core.NewScrubber(sec)
	for _, in := range []string{"K K İİ: " + sec + " :ſK", "K K: " + strings.ToUpper(sec) + " :end", "İ" + strings.ToLower(sec) + "K"} {
		out := sc.String(in)
		require.True(t, utf8.ValidString(out), "%q -> %q", in, out)
		require.Empty(t, leak(out, sec), "%q -> %q", in, out)
		require.Contains(t, out, core.Redacted)
	}
	require.Equal(t, "K K İİ: "+core.Redacted+" :end", sc.String("K K İİ: "+strings.ToUpper(sec)+" :end"))

	// Invalid UTF-8 around a secret stays as it was.
	sec = "Sup3rS3cret-Passw0rd"
	sc = core.NewScrubber(sec)
	require.Equal(t, "\xff\x80"+core.Redacted+"\xc3", sc.String("\xff\x80"+sec+"\xc3"))
}

func TestScrubberBytesDoesNotModifyInput(t *testing.T) {
	sec := "Sup3rS3cret-Passw0rd"
	in := []byte("a " + sec + " b")
	keep := string(in)
	out := core.NewScrubber(sec).Bytes(in)
	require.Equal(t, "a "+core.Redacted+" b", string(out))
	require.Equal(t, keep, string(in))
}

func TestScrubberConcurrent(t *testing.T) {
	sec := "Sup3rS3cret-Passw0rd-2024-xyzzy"
	sc := core.NewScrubber(sec)
	in := strings.Repeat("x "+base64.StdEncoding.EncodeToString([]byte(sec))+" y ", 20)
	want := sc.String(in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := sc.String(in); got != want {
					t.Errorf("concurrent use changed the answer")
				}
			}
		})
	}
	wg.Wait()
}

func TestScrubWrappers(t *testing.T) {
	sec := "Sup3rS3cret-Passw0rd"
	require.Equal(t, "x "+core.Redacted, core.Scrub("x "+url.QueryEscape(sec[:12]), []string{sec}))
	require.Equal(t, "x "+core.Redacted, string(core.ScrubBytes([]byte("x "+hex.EncodeToString([]byte(sec))), []string{sec})))
	require.Equal(t, "x", core.Scrub("x", nil))
}

func FuzzScrubber(f *testing.F) {
	f.Add("Sup3rS3cret-Passw0rd", "vendor said: ", uint8(0), uint16(5), uint8(0), uint8(8))
	f.Add(`P"<>&'/%+= é-日本-🔑-\Zz9`, "<html>&amp; %41 \\u0041</html>", uint8(7), uint16(3), uint8(2), uint8(12))
	f.Add("ééééééééé", "«»", uint8(1), uint16(1), uint8(1), uint8(8))
	f.Add("kelvin-İstanbul-ſ", "K", uint8(20), uint16(0), uint8(3), uint8(9))
	f.Fuzz(func(t *testing.T, secret, text string, form uint8, at uint16, from, n uint8) {
		r := []rune(secret)
		if !utf8.ValidString(secret) || len(r) < core.PieceLen || len(secret) > 200 || len(text) > 2000 {
			t.Skip("not an input this target is about: the secret must be valid UTF-8 of at least core.PieceLen characters, the sizes bounded")
		}
		start := int(from) % (len(r) - core.PieceLen + 1)
		length := core.PieceLen + int(n)%(len(r)-start-core.PieceLen+1)
		piece := string(r[start : start+length])
		fm := scrubForms[int(form)%len(scrubForms)]
		pos := int(at) % (len(text) + 1)
		for pos > 0 && pos < len(text) && !utf8.RuneStart(text[pos]) {
			pos--
		}
		in := text[:pos] + fm.enc(piece) + text[pos:]
		out := core.NewScrubber(secret).String(in)
		if l := leak(out, secret); l != "" {
			t.Fatalf("form %s: %s survives in %q (from %q)", fm.name, l, out, in)
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of valid: %q -> %q", in, out)
		}
	})
}

// BenchmarkScrubber: a 1 MiB vendor answer (JSON lines of ordinary text, one echoed secret in a
// few forms every 64 KiB) against 5 secrets of 40 characters; and building the Scrubber.
func BenchmarkScrubber(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	secrets := make([]string, 5)
	for i := range secrets {
		s := make([]byte, 40)
		for j := range s {
			s[j] = alphabet[rng.IntN(len(alphabet))]
		}
		secrets[i] = string(s)
	}
	var body bytes.Buffer
	for i := 0; body.Len() < 1<<20; i++ {
		fmt.Fprintf(&body, `{"level":"error","id":%d,"message":"the connection to the warehouse was refused: check the user name, the password and the network policy"}`+"\n", i)
		if i%400 == 0 {
			sec := secrets[i/400%len(secrets)]
			fmt.Fprintf(&body, `{"echo":"%s","b64":"%s","hex":"%s"}`+"\n", sec[:20], base64.StdEncoding.EncodeToString([]byte(sec)), hex.EncodeToString([]byte(sec[5:25])))
		}
	}
	in := body.Bytes()[:1<<20]
	b.Run("scan-1MiB", func(b *testing.B) {
		sc := core.NewScrubber(secrets...)
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			_ = sc.Bytes(in)
		}
	})
	b.Run("build-5x40", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = core.NewScrubber(secrets...)
		}
	})
}
