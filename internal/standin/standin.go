// Package standin is the one stand-in vendor adapter of the tests above the adapters: the API's,
// the fault tests' and, through client/clienttest, the client's and the CLI's. It is a
// core.Adapter whose behaviour a test sets: the credential types it takes, a failure (an error
// that may echo a secret, for the engine to scrub), a refusal at Build, sends held until
// released, a count of sends, the last credential built, and hooks that run first in Build,
// Send and Verify (where a test can panic, fail or answer as it likes).
//
// It imports core only, so tests inside package api (and any other) can use it without a cycle.
// core's own tests keep their scripted fakeAdapter: it models the platform's admission and
// timeouts for the engine's sake, which is no concern of the tests here.
package standin

import (
	"context"
	"fmt"
	"sync"

	"github.com/credsync/credsync/core"
)

// Path is where every stand-in request goes (PATCH).
const Path = "/credentials"

// Adapter is a configurable stand-in for a vendor target. Set its exported fields before the
// engine uses it; change the rest at any time with its methods. It is safe for concurrent use.
//
// Build answers PATCH /credentials with {"password", "username" (when the credential names one)} for
// a password, {"token"} for a token, and {"credential_type"} for any other accepted type; the
// secrets stay core.Secret, so dry runs redact them. Send succeeds and asks for a check unless
// told otherwise; Verify answers verified.
type Adapter struct {
	// Types are the credential types it takes; nil: password only.
	Types []core.CredentialType
	// OnBuild, when set, runs first in Build; an error it returns is Build's. A test makes the
	// adapter panic in Build by panicking here (the panic's stack then names the test's file).
	OnBuild func(core.Credential) error
	// OnSend, when set, runs in Send after the count and any hold; an error it returns fails the
	// send (not retryable). A test makes the adapter panic in Send by panicking here.
	OnSend func(core.Request) error
	// OnVerify, when set, answers Verify.
	OnVerify func(context.Context, core.VerifyRequest) (core.Verification, bool, error)

	mu      sync.Mutex
	fail    *core.Error
	refuse  bool
	hold    chan struct{}
	release func()
	sends   int
	last    core.Credential
}

var _ core.Adapter = (*Adapter)(nil)

// New returns a stand-in taking the given credential types (none: password only).
func New(types ...core.CredentialType) *Adapter {
	return &Adapter{Types: types}
}

// Accepts implements core.Adapter.
func (a *Adapter) Accepts() []core.CredentialType {
	if len(a.Types) == 0 {
		return []core.CredentialType{core.TypePassword}
	}
	return append([]core.CredentialType(nil), a.Types...)
}

// Build implements core.Adapter.
func (a *Adapter) Build(c core.Credential) (core.Request, error) {
	if a.OnBuild != nil {
		if err := a.OnBuild(c); err != nil {
			return core.Request{}, err
		}
	}
	a.mu.Lock()
	a.last = c
	refuse := a.refuse
	a.mu.Unlock()
	if refuse {
		return core.Request{}, &core.InputError{Message: "credential refused", Problems: []core.Problem{
			{Field: "credential", Message: "this target refuses every credential now (standin.Refuse)"}}}
	}
	if !a.takes(c.Type) {
		return core.Request{}, &core.InputError{Message: "credential not accepted", Problems: []core.Problem{
			{Field: "credential.type", Message: fmt.Sprintf("%s is not accepted here (%s)", c.Type, core.JoinTypes(a.Accepts()))}}}
	}
	body := map[string]any{}
	switch c.Type {
	case core.TypePassword:
		body["password"] = c.Password
		if c.Username != "" {
			body["username"] = c.Username
		}
	case core.TypeToken:
		body["token"] = c.Token
	default:
		body["credential_type"] = string(c.Type)
	}
	return core.Request{Method: "PATCH", Path: Path, Body: body}, nil
}

func (a *Adapter) takes(t core.CredentialType) bool {
	for _, x := range a.Accepts() {
		if x == t {
			return true
		}
	}
	return false
}

// Send implements core.Adapter: it counts the send, waits while held (or until ctx ends), runs
// OnSend, then fails with the FailWith error or succeeds asking for a check.
func (a *Adapter) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	err := a.send(ctx, req)
	return core.SendResult{Check: err == nil}, false, err
}

func (a *Adapter) send(ctx context.Context, req core.Request) error {
	a.mu.Lock()
	a.sends++
	hold := a.hold
	a.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if a.OnSend != nil {
		if err := a.OnSend(req); err != nil {
			return err
		}
	}
	a.mu.Lock()
	fail := a.fail
	a.mu.Unlock()
	if fail != nil {
		e := *fail // a fresh error for each send: the engine may annotate the one it gets
		return &e
	}
	return nil
}

// Verify implements core.Adapter.
func (a *Adapter) Verify(ctx context.Context, req core.VerifyRequest) (core.Verification, bool, error) {
	if a.OnVerify != nil {
		return a.OnVerify(ctx, req)
	}
	return core.Verification{Verified: true}, false, nil
}

// FailWith makes the following sends fail with (a copy of) err; nil makes them succeed again.
// The message may echo a secret on purpose: the engine must scrub it.
func (a *Adapter) FailWith(err *core.Error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = err
}

// Refuse makes Build refuse every credential with an *core.InputError (refuse true), or build
// again (false).
func (a *Adapter) Refuse(refuse bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuse = refuse
}

// Hold makes the following sends wait until the returned release function is called (it may be
// called more than once). A new Hold releases the previous one.
func (a *Adapter) Hold() (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() {
		once.Do(func() {
			a.mu.Lock()
			if a.hold == ch {
				a.hold, a.release = nil, nil
			}
			a.mu.Unlock()
			close(ch)
		})
	}
	a.mu.Lock()
	prev := a.release
	a.hold, a.release = ch, release
	a.mu.Unlock()
	if prev != nil {
		prev()
	}
	return release
}

// Release lets every held send go on and stops holding (for a test's cleanup).
func (a *Adapter) Release() {
	a.mu.Lock()
	r := a.release
	a.mu.Unlock()
	if r != nil {
		r()
	}
}

// Sends returns how many sends reached the adapter (held ones included).
func (a *Adapter) Sends() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sends
}

// LastCredential returns the last credential a request was built from (dry runs included).
func (a *Adapter) LastCredential() core.Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}
