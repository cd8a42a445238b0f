package snowflake

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/sourcedb/snowflake/snowflakefake"
)

const (
	testAccount = "myorg-myaccount"
	testAdmin   = "CREDSYNC_ADMIN"
	testUser    = "SVC_LOADER"
)

// Keys are slow to make under -race: a few are made once and shared.
var (
	keysOnce sync.Once
	keys     []core.Secret
)

func testKeys(t *testing.T) []core.Secret {
	t.Helper()
	keysOnce.Do(func() {
		keys = make([]core.Secret, 5)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := GenerateKey(2048)
				if err != nil {
					panic(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
	})
	return keys
}

// env is a fake with an admin and the rotated user, and a config reaching it.
type env struct {
	fake          *snowflakefake.Server
	cfg           Config
	admin         core.Secret
	old, new, bad core.Secret // old is in slot 1; new and bad are in no slot
	spare         core.Secret
}

func fastTuning() *tuning {
	return &tuning{now: time.Now, attempts: 3, backoff: 5 * time.Millisecond, maxBackoff: 20 * time.Millisecond,
		pollInterval: 5 * time.Millisecond, maxPolls: 10}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k := testKeys(t)
	f := snowflakefake.New(testAccount)
	t.Cleanup(f.Close)
	f.AddUser(testAdmin, true, k[0].Reveal())
	f.AddUser(testUser, false, k[1].Reveal())
	e := &env{fake: f, admin: k[0], old: k[1], new: k[2], bad: k[3], spare: k[4]}
	e.cfg = Config{Account: testAccount, AdminUser: testAdmin, AdminKey: k[0], Role: "SECURITYADMIN",
		Endpoint: f.URL, User: testUser, tune: fastTuning()}
	return e
}

func (e *env) open(t *testing.T) *DB {
	t.Helper()
	d, err := Open(context.Background(), e.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// secretsOf are the texts no error may hold: each key's PEM body (on one line and line by
// line) and the tokens the fake received (whole, and their signatures).
func (e *env) secretsOf() []string {
	var out []string
	for _, k := range []core.Secret{e.admin, e.old, e.new, e.bad, e.spare} {
		body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(k.Reveal()), "-----BEGIN PRIVATE KEY-----"), "-----END PRIVATE KEY-----"))
		out = append(out, strings.ReplaceAll(body, "\n", ""))
		out = append(out, strings.Split(body, "\n")...)
	}
	for _, r := range e.fake.Requests() {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			out = append(out, tok)
			if i := strings.LastIndexByte(tok, '.'); i >= 0 {
				out = append(out, tok[i+1:])
			}
		}
	}
	return out
}

// noSecret fails when err's text holds a piece (PieceLen characters) of any secret.
func noSecret(t *testing.T, err error, secrets []string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	sc := core.NewScrubber(secrets...)
	if got := sc.String(msg); got != msg {
		t.Errorf("an error holds secret material:\n%s\nscrubbed:\n%s", msg, got)
	}
}

// assertGolden compares got with sourcedb/snowflake/testdata/<name>, or rewrites it with
// -update (the flag of internal/golden, which every test package of the module shares).
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if golden.Updating() {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./sourcedb/snowflake -update to create it")
	if !bytes.Equal(want, got) {
		t.Errorf("testdata/%s differs (go test ./sourcedb/snowflake -update, then review the diff)\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}
