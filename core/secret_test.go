package core_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update for go test ./... -update
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const clear = "hunter2-clear-value"

func TestSecretNeverPrints(t *testing.T) {
	s := core.NewSecret(clear)
	cred := core.Credential{Type: core.TypePassword, Username: "u", Password: s,
		SSHTunnel: &core.SSHTunnel{PrivateKey: s}, Headers: []core.Header{{Name: "X", Value: s}}}
	var outs []string
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, cred), fmt.Sprintf(verb, &cred))
	}
	outs = append(outs, s.String(), fmt.Sprint(s), fmt.Sprintln(cred))
	j, err := json.Marshal(cred)
	require.NoError(t, err)
	outs = append(outs, string(j))
	txt, err := s.MarshalText()
	require.NoError(t, err)
	outs = append(outs, string(txt))

	var buf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
	log.Info("x", zap.Any("secret", s), zap.Any("cred", cred), zap.Stringer("s", s), zap.Reflect("r", cred))
	_ = log.Sync()
	outs = append(outs, buf.String())

	for _, o := range outs {
		require.NotContains(t, o, clear)
		require.NotContains(t, o, fmt.Sprintf("%x", clear))
	}
	require.Contains(t, string(j), core.Redacted)
	require.Contains(t, buf.String(), core.Redacted)
	require.Equal(t, clear, s.Reveal())
}

func TestRequestRedactsButWireReveals(t *testing.T) {
	req := core.Request{Method: "POST", Path: "/x", Body: map[string]any{
		"password": core.NewSecret(clear),
		"list":     []any{map[string]any{"v": core.NewSecret(clear)}},
		"doc":      core.NewSecretJSON(`{"private_key":"` + clear + `"}`),
		"plain":    "keep",
	}}
	dry, err := json.Marshal(req)
	require.NoError(t, err)
	require.NotContains(t, string(dry), clear)
	wire, err := req.WireBody()
	require.NoError(t, err)
	require.Equal(t, `{"doc":{"private_key":"`+clear+`"},"list":[{"v":"`+clear+`"}],"password":"`+clear+`","plain":"keep"}`, string(wire))

	_, err = core.Request{Body: map[string]any{"bad": struct{}{}}}.WireBody()
	require.Error(t, err, "an unsupported body value must fail rather than be sent redacted")
}

func TestScrub(t *testing.T) {
	sec := `p"a\ss`
	esc, _ := json.Marshal(sec)
	msg := "vendor said: " + sec + " and " + string(esc)
	got := core.Scrub(msg, []string{sec})
	require.NotContains(t, got, sec)
	require.NotContains(t, got, strings.Trim(string(esc), `"`))
	require.Contains(t, got, core.Redacted)
}

func TestScrubBothJSONEscapings(t *testing.T) {
	sec := `a<b>&"c`
	html, _ := json.Marshal(sec) // "a\u003cb\u003e\u0026\"c"
	plain := `a<b>&\"c`
	got := core.Scrub("x "+string(html)+" y "+plain+" z", []string{sec})
	require.NotContains(t, got, `\u003c`)
	require.NotContains(t, got, plain)
	require.Equal(t, 2, strings.Count(got, core.Redacted))
	req := core.Request{Body: map[string]any{"a": core.NewSecret("s1"), "l": []any{map[string]any{"b": core.NewSecret("s2")}}, "p": "plain"}}
	require.ElementsMatch(t, []string{"s1", "s2"}, req.Secrets())
}
