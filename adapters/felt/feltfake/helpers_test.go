package feltfake

import (
	"net/http/httptest"
	"testing"
)

const testToken = "felt-test-token-1"

// env is a fake Felt behind an HTTP server.
type env struct {
	fake   *Server
	server *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := New(testToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &env{fake: fake, server: srv}
}

// seeded is newEnv with a PostgreSQL source and a Snowflake source holding a key pair and a
// personal access token.
func seeded(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.fake.AddSource("src_pg", "postgresql")
	e.fake.AddSource("src_sf", "snowflake")
	e.fake.AddCredential("src_sf", "cred_kp", "key_pair")
	e.fake.AddCredential("src_sf", "cred_pat", "snowflake_pat")
	return e
}
