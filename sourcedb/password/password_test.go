package password

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
)

func TestDefaultPolicy(t *testing.T) {
	for range 200 {
		s, err := Generate(Policy{})
		require.NoError(t, err)
		v := s.Reveal()
		require.Len(t, v, DefaultLength)
		require.Equal(t, "", strings.Trim(v, Upper+Lower+Digits), "letters and digits only: %s", v)
		require.True(t, hasClasses([]byte(v), false))
		require.Contains(t, Upper+Lower, v[:1], "starts with a letter")
		require.Equal(t, "[REDACTED]", fmt.Sprint(s))
	}
}

func TestSymbolsPolicy(t *testing.T) {
	for _, n := range []int{MinLength, 17, 32, 64, MaxLength} {
		for range 200 {
			s, err := Generate(Policy{Length: n, Symbols: true})
			require.NoError(t, err)
			v := s.Reveal()
			require.Len(t, v, n)
			require.Equal(t, "", strings.Trim(v, Upper+Lower+Digits+SymbolSet), "alphabet: %s", v)
			require.True(t, strings.ContainsAny(v, Upper), v)
			require.True(t, strings.ContainsAny(v, Lower), v)
			require.True(t, strings.ContainsAny(v, Digits), v)
			require.True(t, strings.ContainsAny(v, SymbolSet), v)
			require.Contains(t, Upper+Lower, v[:1], "starts with a letter")
		}
	}
}

func TestDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := Generate(Policy{Length: MinLength})
		require.NoError(t, err)
		require.False(t, seen[s.Reveal()])
		seen[s.Reveal()] = true
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, n := range []int{-1, 1, 8, MinLength - 1, MaxLength + 1, 1 << 20} {
		p := Policy{Length: n}
		err := p.Validate()
		require.Error(t, err, n)
		require.Equal(t, fmt.Sprintf("password length must be between 16 and 128 characters (0 means 32), got %d", n), err.Error())
		_, err = Generate(p)
		require.Error(t, err)
	}
	for _, n := range []int{0, MinLength, MaxLength} {
		require.NoError(t, Policy{Length: n}.Validate())
	}
}

// TestRejectionSampling feeds known bytes: a byte at or above the largest multiple of the
// alphabet's size is skipped, never folded onto the alphabet.
func TestRejectionSampling(t *testing.T) {
	alphabet := Upper + Lower + Digits + SymbolSet // 68: bytes 204..255 are rejected
	src := &byteSource{r: bytes.NewReader(append([]byte{255, 204, 203, 0, 67, 68}, make([]byte, 250)...))}
	var got []byte
	for range 4 {
		c, err := src.pick(alphabet)
		require.NoError(t, err)
		got = append(got, c)
	}
	// 255 and 204 skipped; 203 = 2*68+67 is the last symbol; 0, 67, 68 -> A, *, A
	require.Equal(t, []byte{'*', 'A', '*', 'A'}, got)
}

func TestRandomSourceFails(t *testing.T) {
	_, err := generate(Policy{}, iotestErrReader{})
	require.ErrorContains(t, err, "password: read random bytes: broken")
	// a source that yields only letters never gives a digit: it gives up instead of looping
	_, err = generate(Policy{}, constReader(0))
	require.ErrorContains(t, err, "lack a character class")
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// chiSquare is Pearson's statistic of counts against a uniform distribution over them.
func chiSquare(counts map[byte]int, categories string) float64 {
	total := 0
	for i := 0; i < len(categories); i++ {
		total += counts[categories[i]]
	}
	want := float64(total) / float64(len(categories))
	var x float64
	for i := 0; i < len(categories); i++ {
		d := float64(counts[categories[i]]) - want
		x += d * d / want
	}
	return x
}

// bound is far in the tail of the chi-square distribution with len(categories)-1 degrees of
// freedom (mean df, standard deviation sqrt(2 df)): df + 10 standard deviations + 40. A uniform
// source exceeds it with probability below 1e-14 for every class size here (5 to 67 degrees of
// freedom), so the tests cannot flake;
// modulo bias or a stuck character exceeds it by orders of magnitude (TestChiSquareDetectsBias).
func bound(categories string) float64 {
	df := float64(len(categories) - 1)
	return df + 10*math.Sqrt(2*df) + 40
}

func TestSamplerUniform(t *testing.T) {
	alphabet := Upper + Lower + Digits + SymbolSet
	src := &byteSource{r: rand.Reader}
	counts := map[byte]int{}
	for range 400_000 {
		c, err := src.pick(alphabet)
		require.NoError(t, err)
		counts[c]++
	}
	x := chiSquare(counts, alphabet)
	require.Less(t, x, bound(alphabet), "chi-square %.1f over %d characters", x, len(alphabet))
}

// TestChiSquareDetectsBias shows that the bound would catch the classic mistake, b % n without
// rejection, on a sample the size of TestSamplerUniform's.
func TestChiSquareDetectsBias(t *testing.T) {
	alphabet := Upper + Lower + Digits + SymbolSet
	buf := make([]byte, 400_000)
	_, err := io.ReadFull(rand.Reader, buf)
	require.NoError(t, err)
	counts := map[byte]int{}
	for _, b := range buf {
		counts[alphabet[int(b)%len(alphabet)]]++
	}
	require.Greater(t, chiSquare(counts, alphabet), 10*bound(alphabet))
}

// TestGenerateUniform checks passwords as a whole. Throwing away candidates that lack a class
// makes the classes' shares differ a little from their sizes, but it treats the characters of a
// class alike, so within each class (and among the letters that open a password) every
// character must be equally likely.
func TestGenerateUniform(t *testing.T) {
	first := map[byte]int{}
	rest := map[byte]int{}
	for range 20_000 {
		s, err := Generate(Policy{Length: 32, Symbols: true})
		require.NoError(t, err)
		v := s.Reveal()
		first[v[0]]++
		for i := 1; i < len(v); i++ {
			rest[v[i]]++
		}
	}
	for name, class := range map[string]string{"upper": Upper, "lower": Lower, "digits": Digits, "symbols": SymbolSet} {
		x := chiSquare(rest, class)
		require.Less(t, x, bound(class), "%s: chi-square %.1f", name, x)
	}
	x := chiSquare(first, Upper+Lower)
	require.Less(t, x, bound(Upper+Lower), "first character: chi-square %.1f", x)
}
