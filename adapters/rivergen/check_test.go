package rivergen_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/adapters/rivergen"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

func check(t *testing.T, a core.Adapter) core.CheckResult {
	t.Helper()
	c, ok := a.(core.Checker)
	if !ok {
		t.Fatalf("%T does not implement core.Checker", a)
	}
	return c.Check(context.Background())
}

func requireCheck(t *testing.T, got core.CheckResult, want core.CheckStatus, msg string) {
	t.Helper()
	if got.Status != want || !strings.Contains(got.Message, msg) {
		t.Fatalf("Check = %s %q, want %s containing %q", got.Status, got.Message, want, msg)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, testToken)
	ok := check(t, e.target(t, "data_source_id: 1"))
	requireCheck(t, ok, core.CheckReady, "Test Connection with the credentials RiverGen holds succeeded")
	if ok.CredentialFails || core.HealthOf(ok) != core.HealthHealthy {
		t.Fatalf("a passing Test Connection is healthy: %+v", ok)
	}

	// The database refuses the credentials RiverGen holds now: still ready (the rotation fixes
	// it), but the target is unhealthy (drift, with verify_every).
	e.fake.SetConnectionOK(1, false, "AUTHENTICATION_FAILED", "password authentication failed")
	bad := check(t, e.target(t, "data_source_id: 1"))
	requireCheck(t, bad, core.CheckReady, "failed (AUTHENTICATION_FAILED: password authentication failed)")
	if !bad.CredentialFails || core.HealthOf(bad) != core.HealthUnhealthy {
		t.Fatalf("a refused Test Connection says the credential fails: %+v", bad)
	}

	requireCheck(t, check(t, e.target(t, "data_source_id: 99")), core.CheckNotFound, "data source 99 not found")

	// The configured test query and timeout go with the test, as in Verify.
	e.fake.Reset()
	check(t, e.target(t, "data_source_id: 1\ntest_query: SELECT 1\ntest_timeout_seconds: 2"))
	reqs := e.fake.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/api/v1/data-sources/1/test" ||
		string(reqs[0].Body) != `{"test_query":"SELECT 1","timeout_seconds":2}` {
		t.Fatalf("check sent %+v", reqs)
	}
	if c, _ := e.fake.Credentials(1); c.Updates != 0 {
		t.Fatalf("a check updated the credentials: %+v", c)
	}
}

func TestCheckUnauthorized(t *testing.T) {
	e := newEnv(t, "wrong-rivergen-token")
	got := check(t, e.target(t, "data_source_id: 1"))
	requireCheck(t, got, core.CheckUnauthorized, "HTTP 401")
	if strings.Contains(got.Message, "wrong-rivergen-token") {
		t.Fatalf("the token shows in %q", got.Message)
	}
	e2 := newEnv(t, testToken)
	e2.fake.SetOrganizationMember(false)
	requireCheck(t, check(t, e2.target(t, "data_source_id: 1")), core.CheckUnauthorized, "HTTP 403")
}

func TestCheckUnreachable(t *testing.T) {
	e := newEnv(t, testToken)
	e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	requireCheck(t, check(t, e.target(t, "data_source_id: 1")), core.CheckUnreachable, "HTTP 502")
	e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		_, _ = w.Write([]byte("<html>login</html>"))
		return true
	})
	requireCheck(t, check(t, e.target(t, "data_source_id: 1")), core.CheckUnreachable, "not RiverGen's envelope")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p, err := rivergen.NewPlatform(vendorhttp.Platform{Name: "rivergen", BaseURL: "http://" + addr, Token: core.NewSecret(testToken), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.NewTarget(yamlNode(t, "data_source_id: 1"))
	if err != nil {
		t.Fatal(err)
	}
	requireCheck(t, check(t, a), core.CheckUnreachable, "refused")
}
