package standin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // defines -update (go test ./... -update)
	"github.com/credsync/credsync/internal/standin"
)

var pw = core.Credential{Type: core.TypePassword, Username: "svc", Password: core.NewSecret("pw-1")}

func TestBuildTakesOnlyItsTypes(t *testing.T) {
	a := standin.New()
	require.Equal(t, []core.CredentialType{core.TypePassword}, a.Accepts(), "password only by default")
	req, err := a.Build(pw)
	require.NoError(t, err)
	require.Equal(t, "PATCH", req.Method)
	require.Equal(t, standin.Path, req.Path)
	require.Equal(t, map[string]any{"password": pw.Password, "username": "svc"}, req.Body)
	_, err = a.Build(core.Credential{Type: core.TypeToken, Token: core.NewSecret("t")})
	var ie *core.InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "credential.type", ie.Problems[0].Field)

	b := standin.New(core.TypePassword, core.TypeToken)
	req, err = b.Build(core.Credential{Type: core.TypeToken, Token: core.NewSecret("t")})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"token": core.NewSecret("t")}, req.Body)
	require.Equal(t, core.TypeToken, b.LastCredential().Type)
	b.Accepts()[0] = core.TypeKeyPair
	require.Equal(t, core.TypePassword, b.Accepts()[0], "Accepts returns a copy")
}

func TestRefuseAndOnBuild(t *testing.T) {
	a := standin.New()
	a.Refuse(true)
	_, err := a.Build(pw)
	var ie *core.InputError
	require.ErrorAs(t, err, &ie)
	a.Refuse(false)
	_, err = a.Build(pw)
	require.NoError(t, err)

	boom := errors.New("boom")
	a.OnBuild = func(core.Credential) error { return boom }
	_, err = a.Build(pw)
	require.ErrorIs(t, err, boom)
	a.OnBuild = func(c core.Credential) error { panic("holding " + c.Password.Reveal()) }
	require.PanicsWithValue(t, "holding pw-1", func() { _, _ = a.Build(pw) })
}

func TestSendFailsCountsAndHolds(t *testing.T) {
	ctx := context.Background()
	a := standin.New()
	req, _ := a.Build(pw)
	res, retry, err := a.Send(ctx, req)
	require.NoError(t, err)
	require.False(t, retry)
	require.True(t, res.Check, "a success asks for a check")
	v, _, err := a.Verify(ctx, core.VerifyRequest{})
	require.NoError(t, err)
	require.True(t, v.Verified)

	echo := &core.Error{Code: core.CodeRejected, Message: `HTTP 400: bad password "pw-1"`, VendorStatus: 400}
	a.FailWith(echo)
	_, _, err = a.Send(ctx, req)
	var ce *core.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, echo.Message, ce.Message)
	ce.Message = "changed by the engine"
	_, _, err = a.Send(ctx, req)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, echo.Message, ce.Message, "each send gets its own copy")
	a.FailWith(nil)
	require.Equal(t, 3, a.Sends())

	release := a.Hold()
	done := make(chan error, 1)
	go func() { _, _, err := a.Send(ctx, req); done <- err }()
	require.Eventually(t, func() bool { return a.Sends() == 4 }, 5*time.Second, time.Millisecond)
	select {
	case <-done:
		t.Fatal("a held send returned")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	release() // twice is fine
	require.NoError(t, <-done)

	a.Hold()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = a.Send(cctx, req)
	require.ErrorIs(t, err, context.Canceled, "a held send ends with its context")
	a.Release()
	_, _, err = a.Send(ctx, req)
	require.NoError(t, err, "Release stops holding")
}

func TestOnSendAndOnVerify(t *testing.T) {
	ctx := context.Background()
	a := standin.New()
	req, _ := a.Build(pw)
	a.OnSend = func(r core.Request) error {
		body, err := r.WireBody()
		if err != nil {
			return err
		}
		panic("cannot handle " + string(body))
	}
	require.PanicsWithValue(t, `cannot handle {"password":"pw-1","username":"svc"}`, func() { _, _, _ = a.Send(ctx, req) })
	a.OnSend = func(core.Request) error { return errors.New("no") }
	_, _, err := a.Send(ctx, req)
	require.EqualError(t, err, "no")

	a.OnSend = nil
	a.OnVerify = func(context.Context, core.VerifyRequest) (core.Verification, bool, error) {
		return core.Verification{Verified: false, Warning: "not yet"}, false, nil
	}
	v, _, err := a.Verify(ctx, core.VerifyRequest{})
	require.NoError(t, err)
	require.False(t, v.Verified)
	require.True(t, strings.Contains(v.Warning, "not yet"))
}
