package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/sourcedb"
	"github.com/credsync/credsync/sourcedb/snowflake"
	"github.com/credsync/credsync/sourcedb/snowflake/snowflakefake"
)

// Snowflake key pairs, end to end: the real binary rotates the key of a Snowflake user through
// the fake SQL API (snowflakefake, which checks every key-pair JWT against the keys it holds),
// and fans the private key out to Felt (a key_pair credential) and Databrain (a snowflake
// datasource). What is checked is what the fakes hold and applied: the slots' fingerprints, the
// keys the vendors received, logins with them, and the order of SET and UNSET in the fake's
// history.

const (
	sfSource  = "warehouse-sf"
	sfAccount = "MYORG-ACCT"
	sfAdmin   = "CREDSYNC_ADMIN"
	sfUser    = "SVC_BI"
)

type sfOwned struct {
	s        *setup
	sf       *snowflakefake.Server
	adminKey core.Secret
	oldKey   core.Secret // the consumers' key before credsync rotates: in RSA_PUBLIC_KEY_2
	dbPath   string
	texts    []string
}

func newSFOwned(t *testing.T) *sfOwned {
	t.Helper()
	adminKey, err := snowflake.GenerateKey(2048)
	require.NoError(t, err)
	oldKey, err := snowflake.GenerateKey(2048)
	require.NoError(t, err)
	sf := snowflakefake.New(sfAccount)
	t.Cleanup(sf.Close)
	sf.AddUser(sfAdmin, true, adminKey.Reveal())
	// The key the consumers use today sits in the second slot: the first rotation must see it
	// there and stage the first.
	sf.AddUser(sfUser, false, "", oldKey.Reveal())

	fakes, err := demo.StartFakesWith(nil)
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	o := &sfOwned{s: &setup{fakes: fakes}, sf: sf, adminKey: adminKey, oldKey: oldKey, dbPath: filepath.Join(t.TempDir(), "credsync.db")}
	env := fakes.Env(apiToken)
	env["CREDSYNC_ENCRYPTION_KEY"] = demo.NewKey()
	env["SF_ADMIN_KEY"] = adminKey.Reveal()
	for k, v := range env {
		o.s.env = append(o.s.env, k+"="+v)
	}
	o.s.env = append(o.s.env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	cfg := fmt.Sprintf(`server:
  listen: LISTEN
  api_tokens:
    - name: e2e
      token: ${CREDSYNC_API_TOKEN}
store:
  driver: sqlite
  dsn: %q
platforms:
  felt: {vendor: felt, base_url: %s, token: "${FELT_API_TOKEN}", timeout: 3s}
  databrain: {vendor: databrain, base_url: %s, token: "${DATABRAIN_SERVICE_TOKEN}", timeout: 3s}
sources:
  %s:
    rotation:
      engine: snowflake
      admin_dsn: snowflake://%s@%s/?role=SECURITYADMIN&endpoint=%s
      admin_private_key: ${SF_ADMIN_KEY}
      users: [%s]
      retire_after: %s
    targets:
      - {platform: felt, name: felt, source_id: src_sf, credential_id: cred_kp, credential_type: key_pair, poll_interval: 10ms}
      - platform: databrain
        name: databrain
        datasource_type: snowflake
        fields: {host: myorg-acct.snowflakecomputing.com, username: %s, role: ANALYST, warehouse: BI_WH, database: ANALYTICS, schema: PUBLIC}
`, o.dbPath, fakes.URLs["felt"], fakes.URLs["databrain"], sfSource, sfAdmin, strings.ToLower(sfAccount), sf.URL, sfUser, ownedRetireAfter, sfUser)
	// The Databrain target's name is its datasource name.
	fakes.Databrain.AddDatasource("databrain", "snowflake")
	o.s.cfgPath = filepath.Join(t.TempDir(), "credsync.yaml")
	require.NoError(t, os.WriteFile(o.s.cfgPath, []byte(cfg), 0o600))
	return o
}

func (o *sfOwned) call(t *testing.T, g *gateway, method, path, body string) (int, []byte) {
	t.Helper()
	status, _, b := g.call(t, method, path, body, nil)
	o.texts = append(o.texts, string(b))
	return status, b
}

func (o *sfOwned) generate(t *testing.T, g *gateway) *core.Rotation {
	t.Helper()
	status, b := o.call(t, g, "POST", "/v1/rotations?wait=30s", `{"source":"`+sfSource+`","generate":true}`)
	require.Equal(t, http.StatusOK, status, "the rotation ended within the wait: %s\n%s", b, g.output())
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	return &rot
}

func (o *sfOwned) get(t *testing.T, g *gateway, id string) *core.Rotation {
	t.Helper()
	status, b := o.call(t, g, "GET", "/v1/rotations/"+id, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	return &rot
}

// held is the private key each vendor holds, read from the fakes.
func (o *sfOwned) held(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	c, ok := o.s.fakes.Felt.Credential("src_sf", "cred_kp")
	require.True(t, ok)
	out["felt"], _ = c.Fields["private_key"].(string)
	if creds, ok := o.s.fakes.Databrain.Credentials("databrain"); ok { // none before a first update
		out["databrain"], _ = creds["privateKey"].(string)
	}
	return out
}

// login logs in as the user with key through the fake (a JWT signed with it).
func (o *sfOwned) login(t *testing.T, key string) error {
	t.Helper()
	db, err := snowflake.Open(ctxFor(t), snowflake.Config{Account: sfAccount, AdminUser: sfAdmin, AdminKey: o.adminKey,
		Endpoint: o.sf.URL, User: sfUser})
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	return db.Login(ctxFor(t), snowflake.SlotKey1, core.NewSecret(key))
}

func fingerprintOf(t *testing.T, key string) string {
	t.Helper()
	fp, err := snowflakefake.Fingerprint(key)
	require.NoError(t, err)
	return fp
}

// TestSnowflakeKeyPairRotation: the new key lands in the free slot and logs in; every vendor
// holds it; the old key logs in until the retire and is refused after, when its slot is empty;
// the UNSET comes after every target finished; the next rotation goes back to the other slot;
// no piece of any private key appears in the log, the answers or the store file.
func TestSnowflakeKeyPairRotation(t *testing.T) {
	o := newSFOwned(t)
	cfg, err := os.ReadFile(o.s.cfgPath)
	require.NoError(t, err)
	r, out := sourceCheck(t, string(cfg), o.s.env)
	require.Equal(t, core.CheckReady, r.Status, r.Message)
	require.Equal(t, "snowflake", r.Vendor)
	require.NotContains(t, out, pemBody(o.adminKey.Reveal())[:core.PieceLen], "the admin key is never printed")
	o.sf.ResetRequests()
	g := o.s.start(t, "replica-1", freeAddr(t))

	rot := o.generate(t, g)
	require.Equal(t, core.RotationSucceeded, rot.Status, "%+v\n%s", rot.Targets, g.output())
	sr := rot.SourceRotation
	require.NotNil(t, sr)
	require.Equal(t, snowflake.SlotKey1, sr.User, "the old key sits in RSA_PUBLIC_KEY_2: the free slot is staged")
	require.Equal(t, snowflake.SlotKey2, sr.PreviousUser)
	require.Equal(t, sfUser, sr.KeyUser)
	for _, tr := range rot.Targets {
		require.True(t, tr.Verified, tr.Name)
		require.Equal(t, snowflake.SlotKey1, tr.User, "%s says which slot it holds", tr.Name)
	}

	h := o.held(t)
	key := h["felt"]
	require.True(t, strings.HasPrefix(key, "-----BEGIN PRIVATE KEY-----"), "Felt holds a PEM private key")
	require.Equal(t, key, h["databrain"], "every vendor holds the one new key")
	fp1, fp2 := o.sf.Slots(sfUser)
	require.Equal(t, fingerprintOf(t, key), fp1, "the slot holds the public half of the key the vendors hold")
	require.Equal(t, fingerprintOf(t, o.oldKey.Reveal()), fp2, "the old key stays until the retire")
	require.NoError(t, o.login(t, key), "the new key logs in")
	require.NoError(t, o.login(t, o.oldKey.Reveal()), "the old key still logs in before retire_at")

	var done *core.Rotation
	require.Eventually(t, func() bool {
		done = o.get(t, g, rot.ID)
		return done.SourceRotation.Phase == core.PhaseDone
	}, beyondRetire+10*time.Second, 100*time.Millisecond, "the retire ran\n%s", g.output())
	require.NotNil(t, done.SourceRotation.RetiredAt)
	fp1, fp2 = o.sf.Slots(sfUser)
	require.Empty(t, fp2, "the previous slot is unset")
	require.Equal(t, fingerprintOf(t, key), fp1)
	err = o.login(t, o.oldKey.Reveal())
	require.True(t, errors.Is(err, sourcedb.ErrAuth), "the old key is refused after the retire: %v", err)
	require.NoError(t, o.login(t, key), "the new key still logs in")

	// The history the fake applied: SET of slot 1, then UNSET of slot 2 only after every target
	// had finished.
	hist := o.sf.History()
	require.Len(t, hist, 2, "%+v", hist)
	require.Equal(t, []string{"SET " + snowflakefake.Slot1, "UNSET " + snowflakefake.Slot2},
		[]string{hist[0].Op + " " + hist[0].Slot, hist[1].Op + " " + hist[1].Slot})
	require.Equal(t, fingerprintOf(t, key), hist[0].Fingerprint)
	for _, tr := range done.Targets {
		require.True(t, hist[1].At.After(*tr.FinishedAt), "the retire came after %s was verified", tr.Name)
	}

	// The next rotation goes back to slot 2, and the vendors follow.
	next := o.generate(t, g)
	require.Equal(t, core.RotationSucceeded, next.Status)
	require.Equal(t, snowflake.SlotKey2, next.SourceRotation.User)
	key2 := o.held(t)["felt"]
	require.NotEqual(t, key, key2)
	_, fp2 = o.sf.Slots(sfUser)
	require.Equal(t, fingerprintOf(t, key2), fp2)

	_, b := o.call(t, g, "GET", "/v1/sources", "")
	require.Contains(t, string(b), `"key_user":"`+sfUser+`"`)
	_, _ = o.call(t, g, "GET", "/v1/audit?limit=1000", "")
	store, err := os.ReadFile(o.dbPath)
	require.NoError(t, err)
	wal, _ := os.ReadFile(o.dbPath + "-wal")
	where := map[string]string{"the log": g.output(), "the answers": strings.Join(o.texts, "\n"), "the store": string(store) + string(wal)}
	require.Contains(t, where["the store"], sfSource, "the store file holds the rotations")
	for _, k := range []string{key, key2, o.adminKey.Reveal()} {
		body := pemBody(k)
		for what, text := range where {
			for i := 0; i+core.PieceLen <= len(body); i += core.PieceLen / 2 {
				require.NotContains(t, text, body[i:i+core.PieceLen], "%s holds a piece of a private key", what)
			}
		}
	}
}

// pemBody is a PEM's base64 lines joined: what would leak if a key did.
func pemBody(k string) string {
	var b strings.Builder
	for _, line := range strings.Split(k, "\n") {
		if !strings.HasPrefix(line, "-----") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestSnowflakeKeyPairPartialRetiresNothing: one vendor refusing leaves the rotation partial,
// each target saying which slot it holds, and nothing unset, so that both keys keep working; the
// retry completes it and the retire follows.
func TestSnowflakeKeyPairPartialRetiresNothing(t *testing.T) {
	o := newSFOwned(t)
	o.s.fakes.Databrain.FailUpdates("databrain", "SCHEMA_CACHE_FAILED")
	g := o.s.start(t, "replica-1", freeAddr(t))

	status, b := o.call(t, g, "POST", "/v1/rotations?wait=60s", `{"source":"`+sfSource+`","generate":true}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	require.Equal(t, core.RotationPartial, rot.Status, "%+v", rot.Targets)
	users := map[string]string{}
	for _, tr := range rot.Targets {
		users[tr.Name] = tr.User
	}
	require.Equal(t, map[string]string{"felt": snowflake.SlotKey1, "databrain": snowflake.SlotKey2}, users,
		"each target says which slot's key it holds")
	time.Sleep(beyondRetire)
	for _, a := range o.sf.History() {
		require.NotEqual(t, "UNSET", a.Op, "nothing is retired while a target holds the old key")
	}
	require.NoError(t, o.login(t, o.oldKey.Reveal()), "Databrain's key still works")
	require.NoError(t, o.login(t, o.held(t)["felt"]), "Felt's key works")

	o.s.fakes.Databrain.FailUpdates("databrain", "")
	status, b = o.call(t, g, "POST", "/v1/rotations/"+rot.ID+"/retry", "")
	require.Equal(t, http.StatusAccepted, status, "%s", b)
	require.Eventually(t, func() bool {
		r := o.get(t, g, rot.ID)
		return r.Status == core.RotationSucceeded && r.SourceRotation.Phase == core.PhaseDone
	}, beyondRetire+20*time.Second, 100*time.Millisecond, "the retry completes the rotation and the retire follows\n%s", g.output())
	_, fp2 := o.sf.Slots(sfUser)
	require.Empty(t, fp2, "the old slot is unset once every target holds the new key")
	h := o.held(t)
	require.Equal(t, h["felt"], h["databrain"])
	require.True(t, errors.Is(o.login(t, o.oldKey.Reveal()), sourcedb.ErrAuth))
	unsets := 0
	for _, a := range o.sf.History() {
		if a.Op == "UNSET" {
			unsets++
			require.Equal(t, snowflakefake.Slot2, a.Slot)
		}
	}
	require.Equal(t, 1, unsets, "one retire, of the old slot")
}

// TestSnowflakeKeyPairKilledInStaging: SIGKILL while the new public key's ALTER USER ... SET is
// in flight, restart: the rotation resumes in staging with the sealed key (not a new one), sets
// it again, and every vendor ends up holding the key whose public half the slot holds.
func TestSnowflakeKeyPairKilledInStaging(t *testing.T) {
	o := newSFOwned(t)
	// Every answer waits: the gateway is killed while its SET waits.
	o.sf.SetFault(snowflakefake.Fault{Latency: 3 * time.Second})
	addr := freeAddr(t)
	g1 := o.s.start(t, "replica-1", addr)
	status, b := o.call(t, g1, "POST", "/v1/rotations", `{"source":"`+sfSource+`","generate":true}`)
	require.Equal(t, http.StatusAccepted, status, "%s", b)
	var rot core.Rotation
	require.NoError(t, json.Unmarshal(b, &rot))
	var killedSet string
	require.Eventually(t, func() bool {
		for _, r := range o.sf.Requests() {
			var st struct {
				Statement string `json:"statement"`
			}
			if json.Unmarshal(r.Body, &st) == nil && strings.Contains(st.Statement, " SET RSA_PUBLIC_KEY") {
				killedSet = st.Statement
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "the gateway never sent the SET:\n%s", g1.output())
	g1.kill(t)
	require.Empty(t, o.sf.History(), "the killed SET was not applied")
	require.Empty(t, o.s.fakes.Felt.Requests(), "no target is called before the key is staged")
	require.Empty(t, o.s.fakes.Databrain.Requests())

	o.sf.SetFault(snowflakefake.Fault{})
	g2 := o.s.start(t, "replica-1", addr)
	var final *core.Rotation
	require.Eventually(t, func() bool {
		final = o.get(t, g2, rot.ID)
		return final.Status.Finished()
	}, 30*time.Second, 50*time.Millisecond, "the restarted gateway finishes the rotation:\n%s", g2.output())
	require.Equal(t, core.RotationSucceeded, final.Status, "%+v", final.Targets)
	key := o.held(t)["felt"]
	require.Equal(t, key, o.held(t)["databrain"])
	fp1, _ := o.sf.Slots(sfUser)
	require.Equal(t, fingerprintOf(t, key), fp1, "the slot holds the public half of the key every vendor holds")
	hist := o.sf.History()
	require.NotEmpty(t, hist)
	require.Equal(t, killedSet, hist[0].Statement, "the restarted gateway staged the very key the killed one was setting: the sealed one")
	require.NoError(t, o.login(t, key))
	require.NoError(t, o.login(t, o.oldKey.Reveal()), "the previous key, until its retire")
}
