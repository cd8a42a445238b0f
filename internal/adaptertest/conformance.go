package adaptertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/httprec"
)

// Vendor is what the conformance suite needs of one vendor package: an adapter built against
// that vendor's fake (fresh for each call), credentials it takes and refuses, and the fake's
// request log and fault hook.
type Vendor struct {
	// New returns a target adapter pointed at a fresh fake, and that fake.
	New func(t *testing.T) (core.Adapter, Fake)
	// Good is a credential the target takes; Secret is one of its secret values.
	Good   core.Credential
	Secret string
	// Refused is a credential of a type the target does not take.
	Refused core.Credential
}

// Fake is the part of a vendor fake the suite drives.
type Fake interface {
	Requests() []httprec.Request
	SetFault(fakeutil.Fault)
}

// Conformance checks the adapter contract every vendor must keep, whatever its wire format:
// Build is pure, deterministic, refuses with an *InputError and redacts its secrets when marshalled;
// a delivery against the fake succeeds and is verified; a canceled send reaches nothing and says
// so; vendor failures come back as bounded *core.Error values with the right retry verdict, and
// never carry the secret, even when the vendor echoes it.
func Conformance(t *testing.T, v Vendor) {
	t.Run("BuildIsPureAndDeterministic", func(t *testing.T) {
		a, fake := v.New(t)
		require(t, len(a.Accepts()) > 0, "Accepts lists at least one credential type")
		r1, err := a.Build(v.Good)
		require(t, err == nil, "Build of an accepted credential: %v", err)
		r2, err := a.Build(v.Good)
		require(t, err == nil, "second Build: %v", err)
		b1, err1 := r1.WireBody()
		b2, err2 := r2.WireBody()
		require(t, err1 == nil && err2 == nil, "WireBody: %v %v", err1, err2)
		require(t, string(b1) == string(b2) && r1.Method == r2.Method && r1.Path == r2.Path, "Build is deterministic")
		require(t, strings.Contains(string(b1), jsonString(v.Secret)), "the wire body carries the secret in clear")
		red, err := json.Marshal(r1)
		require(t, err == nil, "marshal the request: %v", err)
		require(t, !strings.Contains(string(red), v.Secret), "a marshalled request (the dry run) shows no secret: %s", red)
		require(t, len(fake.Requests()) == 0, "Build sends nothing")
	})
	t.Run("BuildRefusesWithInputError", func(t *testing.T) {
		a, fake := v.New(t)
		_, err := a.Build(v.Refused)
		var ie *core.InputError
		require(t, errors.As(err, &ie), "Build of a refused credential returns an *InputError, got %v", err)
		require(t, !strings.Contains(err.Error(), v.Secret), "the refusal names no secret")
		require(t, len(fake.Requests()) == 0, "a refused Build sends nothing")
	})
	t.Run("DeliverIsVerified", func(t *testing.T) {
		a, fake := v.New(t)
		req, err := a.Build(v.Good)
		require(t, err == nil, "Build: %v", err)
		res, err := Deliver(context.Background(), a, req)
		require(t, err == nil, "delivery against the fake: %v", err)
		require(t, res.Verify.Verified, "a healthy fake verifies the new credential (%+v)", res)
		require(t, len(fake.Requests()) > 0, "the delivery reached the fake")
	})
	t.Run("CanceledSendReachesNothing", func(t *testing.T) {
		a, fake := v.New(t)
		req, _ := a.Build(v.Good)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, retry, err := a.Send(ctx, req)
		require(t, err != nil, "a canceled send fails")
		require(t, retry, "and may be retried")
		var ce *core.Error
		require(t, errors.As(err, &ce) && ce.NotSent, "it says nothing was sent (NotSent), got %#v", err)
		require(t, len(fake.Requests()) == 0, "nothing reached the vendor")
	})
	for _, tc := range []struct {
		name   string
		status int
		code   string
		retry  bool
	}{
		{"500", http.StatusInternalServerError, core.CodeVendorError, true},
		{"401", http.StatusUnauthorized, core.CodeUnauthorized, false},
		{"429", http.StatusTooManyRequests, core.CodeRateLimited, true},
	} {
		t.Run("VendorAnswers"+tc.name, func(t *testing.T) {
			a, fake := v.New(t)
			req, _ := a.Build(v.Good)
			// The vendor echoes the secret three ways in an oversized body.
			echo := v.Secret + " " + strings.ToUpper(v.Secret) + " " + jsonString(v.Secret) + " " + strings.Repeat("x", 64<<10)
			body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": "E", "message": echo}, "message": echo,
				"errors": []map[string]any{{"title": "bad", "detail": echo}}})
			fake.SetFault(fakeutil.Status(tc.status, "", string(body), 0))
			_, retry, err := a.Send(context.Background(), req)
			var ce *core.Error
			require(t, errors.As(err, &ce), "a %d is a *core.Error, got %v", tc.status, err)
			require(t, ce.Code == tc.code, "a %d is %s, got %s", tc.status, tc.code, ce.Code)
			require(t, retry == tc.retry, "a %d retry verdict is %v", tc.status, tc.retry)
			require(t, !ce.Retryable, "the verdict is the returned bool alone: Error.Retryable is the engine's to fill")
			require(t, ce.VendorStatus == tc.status, "vendor_status is %d, got %d", tc.status, ce.VendorStatus)
			require(t, len(ce.Message) <= 1<<10, "the message stays short (%d bytes)", len(ce.Message))
			require(t, !containsPiece(ce.Message, v.Secret), "no piece of the secret in the message: %s", ce.Message)
		})
	}
}

// containsPiece reports whether s holds 8 or more consecutive characters of secret, in any case.
func containsPiece(s, secret string) bool {
	ls, lsec := strings.ToLower(s), strings.ToLower(secret)
	if len(lsec) < 8 {
		return strings.Contains(ls, lsec)
	}
	for i := 0; i+8 <= len(lsec); i++ {
		if strings.Contains(ls, lsec[i:i+8]) {
			return true
		}
	}
	return false
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func require(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
