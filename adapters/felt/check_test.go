package felt

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/adapters/felt/feltfake"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

// checkEnv is a fake Felt seeded with a few sources, and a platform using
// token against it.
func checkEnv(t *testing.T, token string) *env {
	t.Helper()
	fake := feltfake.New(testToken)
	fake.AddSource("src_pg", "postgresql")
	fake.AddSource("src_sf", "snowflake")
	fake.AddCredential("src_sf", "cred_kp", "key_pair")
	fake.AddCredential("src_sf", "cred_pat", "snowflake_pat")
	fake.AddSource("src_fs", "feature_server")
	fake.AddCredential("src_fs", "cred_hdr", "custom_headers")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p, err := NewPlatform(vendorhttp.Platform{Name: "felt", BaseURL: srv.URL, Token: core.NewSecret(token), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, server: srv, platform: p}
}

func TestCheck(t *testing.T) {
	e := checkEnv(t, testToken)
	cases := []struct {
		name, target string
		want         core.CheckStatus
		msg          string
	}{
		{"connection ready", "source_id: src_pg\nconnection_type: postgresql", core.CheckReady, `"src_pg" exists, postgresql connection, sync_status completed`},
		{"connection mismatch", "source_id: src_pg\nconnection_type: mssql", core.CheckMismatch, "has connection type postgresql, the config says connection_type mssql"},
		{"source not found", "source_id: src_nope\nconnection_type: postgresql", core.CheckNotFound, `Felt has no source "src_nope"`},
		{"credential ready", "source_id: src_sf\ncredential_id: cred_kp\ncredential_type: key_pair", core.CheckReady, `credential "cred_kp" has type key_pair`},
		{"credential ready with connection type", "source_id: src_sf\ncredential_id: cred_pat\ncredential_type: snowflake_pat\nconnection_type: snowflake", core.CheckReady, "snowflake_pat"},
		{"credential type mismatch", "source_id: src_sf\ncredential_id: cred_kp\ncredential_type: snowflake_pat", core.CheckMismatch, `credential "cred_kp" has type key_pair, the config says credential_type snowflake_pat`},
		{"credential not found", "source_id: src_sf\ncredential_id: cred_nope\ncredential_type: key_pair", core.CheckNotFound, `no credential "cred_nope" (it has cred_kp, cred_pat)`},
		{"credential source not found", "source_id: src_nope\ncredential_id: cred_kp\ncredential_type: key_pair", core.CheckNotFound, `no source "src_nope"`},
		{"connection type mismatch in credential mode", "source_id: src_pg\ncredential_id: cred_kp\ncredential_type: key_pair\nconnection_type: snowflake", core.CheckMismatch, "has connection type postgresql"},
		{"credential not listed", "source_id: src_fs\ncredential_id: cred_hdr\ncredential_type: custom_headers", core.CheckUnknown, "lists no credentials for its feature_server connection"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.target(t, c.target).Check(context.Background())
			if got.Status != c.want || !strings.Contains(got.Message, c.msg) {
				t.Fatalf("Check = %s %q, want %s containing %q", got.Status, got.Message, c.want, c.msg)
			}
		})
	}

	// Every call a check made is a GET described by Felt's spec, and each answer the checks read
	// (with the credential list) is valid against it: nothing was changed.
	router := feltRouter(t)
	reqs := e.fake.Requests()
	if len(reqs) != len(cases) {
		t.Fatalf("%d requests for %d checks, want one each", len(reqs), len(cases))
	}
	for _, rec := range reqs {
		if rec.Method != http.MethodGet {
			t.Fatalf("a check sent %s %s", rec.Method, rec.Path)
		}
		if _, err := validateRequest(t, router, asFeltRequest(t, rec)); err != nil {
			t.Errorf("check request %s %s does not match Felt's spec: %v", rec.Method, rec.Path, err)
		}
	}
	for _, id := range []string{"src_pg", "src_sf", "src_fs"} {
		req, _ := http.NewRequest(http.MethodGet, e.server.URL+"/api/v2/sources/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if id == "src_sf" && !strings.Contains(string(body), `"credentials"`) {
			t.Fatalf("the Snowflake source lists no credentials: %s", body)
		}
		if strings.Contains(string(body), "seeded-private-key") || strings.Contains(string(body), "seeded-token") {
			t.Fatalf("the credential list shows a secret: %s", body)
		}
		checkContractResponse(t, router, "GET", "/api/v2/sources/"+id, resp, body)
	}
}

// A source whose last sync failed is still ready (the token and the source are fine, a rotation
// repairs the credential) but its credential fails: the target is unhealthy.
func TestCheckSeesAFailedSync(t *testing.T) {
	e := checkEnv(t, testToken)
	const target = "source_id: src_pg\nconnection_type: postgresql"
	got := e.target(t, target).Check(context.Background())
	if got.Status != core.CheckReady || got.CredentialFails || core.HealthOf(got) != core.HealthHealthy {
		t.Fatalf("completed sync: %+v", got)
	}
	e.fake.SetSyncOutcome("src_pg", "failed")
	e.fake.SetSyncingPolls(0)
	e.fake.StartSync("src_pg")
	for i := 0; i < 5 && !got.CredentialFails; i++ { // the sync starts after the stale polls
		got = e.target(t, target).Check(context.Background())
	}
	if got.Status != core.CheckReady || !got.CredentialFails || !strings.Contains(got.Message, "sync_status failed") || core.HealthOf(got) != core.HealthUnhealthy {
		t.Fatalf("failed sync: %+v", got)
	}
}

func TestCheckUnauthorized(t *testing.T) {
	e := checkEnv(t, "not-the-felt-token")
	for _, src := range []string{"source_id: src_pg\nconnection_type: postgresql", "source_id: src_sf\ncredential_id: cred_kp\ncredential_type: key_pair"} {
		got := e.target(t, src).Check(context.Background())
		if got.Status != core.CheckUnauthorized || !strings.Contains(got.Message, "HTTP 401") {
			t.Fatalf("Check = %s %q, want unauthorized (HTTP 401)", got.Status, got.Message)
		}
		if strings.Contains(got.Message, "not-the-felt-token") {
			t.Fatalf("the token shows in %q", got.Message)
		}
	}
	e.fake.SetFault(feltfake.ErrorFault(http.StatusForbidden, "", 1))
	if got := e.target(t, "source_id: src_pg\nconnection_type: postgresql").Check(context.Background()); got.Status != core.CheckUnauthorized {
		t.Fatalf("403: Check = %s %q, want unauthorized", got.Status, got.Message)
	}
}

func TestCheckUnreachable(t *testing.T) {
	// A 5xx and a 429 from Felt.
	e := checkEnv(t, testToken)
	tg := e.target(t, "source_id: src_pg\nconnection_type: postgresql")
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		e.fake.SetFault(feltfake.ErrorFault(status, "", 1))
		if got := tg.Check(context.Background()); got.Status != core.CheckUnreachable {
			t.Fatalf("%d: Check = %s %q, want unreachable", status, got.Status, got.Message)
		}
	}
	// A 200 that is not Felt.
	e.fake.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		_, _ = w.Write([]byte("<html>hello</html>"))
		return true
	})
	if got := tg.Check(context.Background()); got.Status != core.CheckUnreachable || !strings.Contains(got.Message, "not with a Felt source") {
		t.Fatalf("HTML: Check = %s %q, want unreachable", got.Status, got.Message)
	}

	// Nothing listens on the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p, err := NewPlatform(vendorhttp.Platform{Name: "felt", BaseURL: "http://" + addr, Token: core.NewSecret(testToken), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.NewTarget(parseNode(t, "source_id: src_pg\nconnection_type: postgresql"))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.(core.Checker).Check(context.Background()); got.Status != core.CheckUnreachable || !strings.Contains(got.Message, "network_error") && !strings.Contains(got.Message, "refused") {
		t.Fatalf("closed port: Check = %s %q, want unreachable", got.Status, got.Message)
	}
}
