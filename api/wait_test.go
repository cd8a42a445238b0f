package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseWaitNeverWrapsAround(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                    0,
		"0":                   0,
		"30":                  30 * time.Second,
		"30s":                 30 * time.Second,
		"1m30s":               90 * time.Second,
		"2h":                  MaxWait, // longer waits are answered at MaxWait
		"18446744074":         MaxWait, // seconds that would overflow a Duration
		"9223372036854775807": MaxWait,
	} {
		got, err := parseWait(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"-1", "-1s", "soon", "1e3", "18446744074000000000000", "0x10"} {
		_, err := parseWait(in)
		require.Error(t, err, in)
	}
}
