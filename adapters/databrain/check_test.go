package databrain

import (
	"context"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
)

// Databrain has no read: the check answers unknown and sends nothing, whatever the token.
func TestCheckIsUnknownAndSendsNothing(t *testing.T) {
	for _, token := range []string{testToken, "wrong-databrain-token"} {
		e := newEnvToken(t, token)
		e.fake.AddDatasource("production-postgres", "postgres")
		a := e.target(t, "datasource_type: postgres\nname: production-postgres\nfields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}")
		var c core.Checker = a
		got := c.Check(context.Background())
		if got.Status != core.CheckUnknown || !strings.Contains(got.Message, `"production-postgres" (postgres) not checked`) {
			t.Fatalf("Check = %s %q", got.Status, got.Message)
		}
		if n := len(e.fake.Requests()); n != 0 {
			t.Fatalf("a check sent %d request(s) to Databrain", n)
		}
	}
}
