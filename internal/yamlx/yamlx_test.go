package yamlx_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/yamlx"
)

type inner struct {
	Port int           `yaml:"port"`
	Wait time.Duration `yaml:"wait"`
}

type outer struct {
	Name   string           `yaml:"name"`
	Token  string           `yaml:"token"`
	Inner  inner            `yaml:"inner"`
	Items  []inner          `yaml:"items"`
	ByName map[string]inner `yaml:"by_name"`
	Free   yaml.Node        `yaml:"free"`
}

func parse(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(doc), &n))
	return n.Content[0]
}

func TestExpandAndDecode(t *testing.T) {
	env := map[string]string{"PORT": "5432", "TOK": "a: b # not yaml", "N": "007"}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	n := parse(t, "name: \"${N}\"\ntoken: ${TOK}\ninner:\n  port: ${PORT}\n  wait: 2s\nitems: [{port: 1}]\nby_name: {x: {port: 2}}\nfree: {anything: goes}\n")
	require.NoError(t, yamlx.Expand(n, look))
	var o outer
	require.NoError(t, yamlx.DecodeStrict(n, &o))
	require.Equal(t, "007", o.Name, "a quoted reference stays a string")
	require.Equal(t, "a: b # not yaml", o.Token, "an expanded value is data, never YAML")
	require.Equal(t, 5432, o.Inner.Port, "a plain reference resolves to its type")
	require.Equal(t, 2*time.Second, o.Inner.Wait)
}

func TestDollarEscape(t *testing.T) {
	n := parse(t, "token: pa$$word\n")
	require.NoError(t, yamlx.Expand(n, func(string) (string, bool) { return "", false }))
	var o outer
	require.NoError(t, yamlx.DecodeStrict(n, &o))
	require.Equal(t, "pa$word", o.Token)
}

func TestMissingVariableNamesItsLine(t *testing.T) {
	n := parse(t, "name: x\ntoken: ${NOPE}\n")
	err := yamlx.Expand(n, func(string) (string, bool) { return "", false })
	require.EqualError(t, err, "line 2: environment variable NOPE is not set (referenced as ${NOPE})")
}

func TestUnknownKeysAtAnyDepth(t *testing.T) {
	for doc, want := range map[string]string{
		"nmae: x\n":                         "line 1: unknown key \"nmae\"",
		"inner:\n  prot: 1\n":               "line 2: unknown key \"prot\" (allowed here: port, wait)",
		"items:\n  - port: 1\n  - pot: 2\n": "line 3: unknown key \"pot\"",
		"by_name:\n  a:\n    porr: 1\n":     "line 3: unknown key \"porr\"",
	} {
		var o outer
		require.ErrorContains(t, yamlx.DecodeStrict(parse(t, doc), &o), want, doc)
	}
	var o outer
	require.NoError(t, yamlx.DecodeStrict(parse(t, "free: {x: 1}\n"), &o), "a yaml.Node field takes anything")
	require.ErrorContains(t, yamlx.DecodeStrict(parse(t, "inner: {port: many}\n"), &o), "line 1")
}
