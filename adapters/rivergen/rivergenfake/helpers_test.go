package rivergenfake_test

import (
	"net/http/httptest"
	"testing"

	"github.com/credsync/credsync/adapters/rivergen/rivergenfake"
)

const testToken = "rg-access-token-1"

// env is a fake RiverGen behind an httptest server.
type env struct {
	fake *rivergenfake.Server
	srv  *httptest.Server
}

// newEnv starts a fake accepting testToken and holding data source 1.
func newEnv(t *testing.T) *env {
	t.Helper()
	fake := rivergenfake.New(testToken)
	fake.AddDataSource(1)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv}
}
