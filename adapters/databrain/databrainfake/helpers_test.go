package databrainfake

import (
	"net/http/httptest"
	"testing"
)

const testToken = "dbn_test_service_token"

// env is a fake Databrain behind an httptest server.
type env struct {
	fake *Server
	srv  *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := New(testToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv}
}
