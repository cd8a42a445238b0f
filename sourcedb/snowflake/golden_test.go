package snowflake

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/internal/httprec"
)

const goldenEndpoint = "https://myorg-myaccount.snowflakecomputing.com"

func recordOf(t *testing.T, r *http.Request) httprec.Request {
	t.Helper()
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		body = b
	}
	return httprec.Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header, Body: body}
}

// goldenPublicKey is the base64 DER of testdata/public.pem (a public key: nothing secret).
func goldenPublicKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/public.pem")
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	return base64.StdEncoding.EncodeToString(blk.Bytes)
}

// TestGoldenRequests pins the exact request of every statement credsync sends (the token shown
// as <token>).
func TestGoldenRequests(t *testing.T) {
	ctx := context.Background()
	spki := goldenPublicKey(t)
	must := func(s string, err error) string { require.NoError(t, err); return s }
	admin := func(stmt string) statementBody {
		return statementBody{Statement: stmt, Timeout: statementTimeout, Role: "SECURITYADMIN", Warehouse: "ADMIN_WH"}
	}
	cases := []struct {
		name string
		body statementBody
	}{
		{"select1_admin", admin(stmtSelect1)},
		{"select1_user", statementBody{Statement: stmtSelect1, Timeout: statementTimeout}},
		{"desc_user", admin(stmtDescUser("SVC_LOADER"))},
		{"desc_user_quoted", admin(stmtDescUser(`odd"name`))},
		{"set_key1", admin(must(stmtSetKey("SVC_LOADER", SlotKey1, spki)))},
		{"set_key2", admin(must(stmtSetKey("SVC_LOADER", SlotKey2, spki)))},
		{"unset_key1", admin(must(stmtUnsetKey("SVC_LOADER", SlotKey1)))},
		{"unset_key2", admin(must(stmtUnsetKey("SVC_LOADER", SlotKey2)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := newStatementRequest(ctx, goldenEndpoint, c.body, "header.claims.signature")
			require.NoError(t, err)
			assertGolden(t, c.name+".golden", golden.Format(recordOf(t, r)))
		})
	}
	t.Run("poll", func(t *testing.T) {
		r, err := newStatusRequest(ctx, goldenEndpoint, "01b2c3d4-0000-4a5b-8000-0123456789ab", "header.claims.signature")
		require.NoError(t, err)
		assertGolden(t, "poll.golden", golden.Format(recordOf(t, r)))
	})
}

// TestWireMatchesGolden checks that what reaches the server is what the golden files show: the
// fake's record of Open's SELECT 1, of DESC USER and of UNSET, byte for byte.
func TestWireMatchesGolden(t *testing.T) {
	if golden.Updating() {
		t.Skip("compares with the files TestGoldenRequests writes")
	}
	e := newEnv(t)
	e.cfg.Warehouse = "ADMIN_WH"
	d := e.open(t)
	ctx := context.Background()
	_, err := d.ActiveSlot(ctx)
	require.NoError(t, err)
	require.NoError(t, d.Retire(ctx, SlotKey2))
	require.NoError(t, d.Login(ctx, SlotKey1, e.old))
	reqs := e.fake.Requests()
	require.Len(t, reqs, 4)
	for i, name := range []string{"select1_admin", "desc_user", "unset_key2", "select1_user"} {
		assertGolden(t, name+".golden", golden.Format(reqs[i]))
	}
}

// TestSetStatementOnTheWire checks the SET statement the fake received holds the key exactly
// as the pure builder makes it.
func TestSetStatementOnTheWire(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	require.NoError(t, d.Stage(context.Background(), SlotKey2, e.new))
	kp, err := parseKey("k", e.new)
	require.NoError(t, err)
	want, err := stmtSetKey(testUser, SlotKey2, kp.spki)
	require.NoError(t, err)
	h := e.fake.History()
	require.Len(t, h, 1)
	require.Equal(t, want, h[0].Statement)
}
