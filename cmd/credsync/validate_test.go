package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testAPIToken = "0123456789abcdef0123"

// preflightConfig writes validConfig with serverExtra appended to its server block and store as
// its store block, and returns the file's path.
func preflightConfig(t *testing.T, dir, serverExtra, store string) string {
	t.Helper()
	text := strings.Replace(validConfig, "platforms:", serverExtra+"store:\n"+store+"platforms:", 1)
	path := filepath.Join(dir, "credsync.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func newKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// selfSigned returns a PEM certificate and its PEM private key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "credsync"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// makeUnwritable takes write permission on path away from this process: a mode without write
// bits, or, for root (whom modes do not stop), the immutable attribute.
func makeUnwritable(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(path, fi.Mode().Perm()&^0o222))
		t.Cleanup(func() { _ = os.Chmod(path, fi.Mode().Perm()) })
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("root, and chattr +i %s failed (%v: %s): no way to make it unwritable here", path, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
}

func sqliteStore(path string) string { return "  driver: sqlite\n  dsn: " + path + "\n" }

// runBoth runs validate and serve on the config at path and returns their exit codes and
// stderr. serve refuses the config before it listens, so it returns.
func runBoth(t *testing.T, path string, flags ...string) (vCode int, vOut, vErr string, sCode int, sErr string) {
	t.Helper()
	var out, errb bytes.Buffer
	vCode = run(append([]string{"validate", "--config", path}, flags...), &out, &errb)
	vOut, vErr = out.String(), errb.String()
	if vCode != exitOK {
		out.Reset()
		errb.Reset()
		sCode = run(append([]string{"serve", "--config", path}, flags...), &out, &errb)
		sErr = errb.String()
	}
	return vCode, vOut, vErr, sCode, sErr
}

// requireSameRefusal checks that serve refused with validate's message: the same lines after
// each command's prefix.
func requireSameRefusal(t *testing.T, vErr string, sCode int, sErr string) {
	t.Helper()
	require.Equal(t, exitConfig, sCode, "serve refuses what validate refuses, with exit 3:\n%s", sErr)
	v, ok := strings.CutPrefix(vErr, "invalid:")
	require.True(t, ok, vErr)
	s, ok := strings.CutPrefix(sErr, "credsync serve: invalid config:")
	require.True(t, ok, sErr)
	require.Equal(t, v, s, "serve says what validate says")
}

func TestValidateRefusesWhatServeRefuses(t *testing.T) {
	const pgPassword = "Sup3rSecretPw"
	for _, tc := range []struct {
		name  string
		key   string                                                // CREDSYNC_ENCRYPTION_KEY
		setup func(t *testing.T, dir string) (server, store string) // server lines to add, store block
		want  []string
	}{
		{name: "no encryption key", key: "",
			setup: func(_ *testing.T, dir string) (string, string) { return "", sqliteStore(filepath.Join(dir, "c.db")) },
			want:  []string{"no encryption key: set CREDSYNC_ENCRYPTION_KEY", "--allow-no-encryption-key"}},
		{name: "key not base64", key: "not base64!",
			setup: func(_ *testing.T, dir string) (string, string) { return "", sqliteStore(filepath.Join(dir, "c.db")) },
			want:  []string{"encryption key: not valid base64", "keys are read from CREDSYNC_ENCRYPTION_KEY"}},
		{name: "key of 16 bytes", key: newKey(16),
			setup: func(_ *testing.T, dir string) (string, string) { return "", sqliteStore(filepath.Join(dir, "c.db")) },
			want:  []string{"is 16 bytes; AES-256 needs exactly 32"}},
		{name: "key file unreadable",
			setup: func(_ *testing.T, dir string) (string, string) {
				return "", sqliteStore(filepath.Join(dir, "c.db")) + "  encryption_key_file: " + filepath.Join(dir, "missing.key") + "\n"
			},
			want: []string{"store.encryption_key_file " + "%DIR%/missing.key cannot be read (no such file or directory)"}},
		{name: "key file malformed",
			setup: func(t *testing.T, dir string) (string, string) {
				kf := writeFile(t, dir, "enc.key", []byte("hello\n"))
				return "", sqliteStore(filepath.Join(dir, "c.db")) + "  encryption_key_file: " + kf + "\n"
			},
			want: []string{"not valid base64", "keys are read from store.encryption_key_file %DIR%/enc.key"}},
		{name: "cert file unreadable", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				_, key := selfSigned(t)
				kp := writeFile(t, dir, "s.key", key)
				return "  tls: {cert_file: " + filepath.Join(dir, "missing.pem") + ", key_file: " + kp + "}\n", sqliteStore(filepath.Join(dir, "c.db"))
			},
			want: []string{"server.tls.cert_file %DIR%/missing.pem cannot be read (no such file or directory)"}},
		{name: "cert and key do not match", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				cert, _ := selfSigned(t)
				_, otherKey := selfSigned(t)
				cp, kp := writeFile(t, dir, "s.pem", cert), writeFile(t, dir, "s.key", otherKey)
				return "  tls: {cert_file: " + cp + ", key_file: " + kp + "}\n", sqliteStore(filepath.Join(dir, "c.db"))
			},
			want: []string{"server.tls: cert_file %DIR%/s.pem and key_file %DIR%/s.key are not a PEM certificate and its private key", "private key does not match public key"}},
		{name: "client CA unreadable", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				cert, key := selfSigned(t)
				cp, kp := writeFile(t, dir, "s.pem", cert), writeFile(t, dir, "s.key", key)
				return "  tls: {cert_file: " + cp + ", key_file: " + kp + ", client_ca_file: " + filepath.Join(dir, "ca.pem") + "}\n", sqliteStore(filepath.Join(dir, "c.db"))
			},
			want: []string{"server.tls.client_ca_file %DIR%/ca.pem cannot be read (no such file or directory)"}},
		{name: "client CA without a certificate", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				cert, key := selfSigned(t)
				cp, kp, ca := writeFile(t, dir, "s.pem", cert), writeFile(t, dir, "s.key", key), writeFile(t, dir, "ca.pem", key)
				return "  tls: {cert_file: " + cp + ", key_file: " + kp + ", client_ca_file: " + ca + "}\n", sqliteStore(filepath.Join(dir, "c.db"))
			},
			want: []string{"server.tls.client_ca_file %DIR%/ca.pem holds no PEM certificate"}},
		{name: "SQLite directory missing", key: newKey(32),
			setup: func(_ *testing.T, dir string) (string, string) {
				return "", sqliteStore(filepath.Join(dir, "nope", "c.db"))
			},
			want: []string{"store.dsn %DIR%/nope/c.db: the directory %DIR%/nope does not exist or cannot be reached (no such file or directory): create it"}},
		{name: "SQLite directory not writable", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				sub := filepath.Join(dir, "ro")
				require.NoError(t, os.Mkdir(sub, 0o700))
				makeUnwritable(t, sub)
				return "", sqliteStore(filepath.Join(sub, "c.db"))
			},
			want: []string{"store.dsn %DIR%/ro/c.db: the directory %DIR%/ro is not writable"}},
		{name: "SQLite database file not writable", key: newKey(32),
			setup: func(t *testing.T, dir string) (string, string) {
				db := writeFile(t, dir, "c.db", nil)
				makeUnwritable(t, db)
				return "", sqliteStore(db)
			},
			want: []string{"store.dsn: the database file %DIR%/c.db exists but is not writable"}},
		{name: "PostgreSQL DSN does not parse", key: newKey(32),
			setup: func(_ *testing.T, _ string) (string, string) {
				return "", "  driver: postgres\n  dsn: \"postgres://credsync:" + pgPassword + "@db:notaport/credsync\"\n"
			},
			want: []string{"store.dsn: the PostgreSQL connection string does not parse (invalid port)"}},
		{name: "listen address does not parse", key: newKey(32),
			setup: func(_ *testing.T, dir string) (string, string) {
				return "  listen: 127.0.0.1\n", sqliteStore(filepath.Join(dir, "c.db"))
			},
			want: []string{`server.listen is "127.0.0.1": must be host:port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDSYNC_TEST_API_TOKEN", testAPIToken)
			t.Setenv("CREDSYNC_ENCRYPTION_KEY", tc.key)
			t.Setenv("CREDSYNC_ENCRYPTION_OLD_KEYS", "")
			dir := t.TempDir()
			server, store := tc.setup(t, dir)
			path := preflightConfig(t, dir, server, store)
			vCode, _, vErr, sCode, sErr := runBoth(t, path)
			require.Equal(t, exitConfig, vCode, "validate:\n%s", vErr)
			for _, w := range tc.want {
				require.Contains(t, vErr, strings.ReplaceAll(w, "%DIR%", dir))
			}
			for _, secret := range []string{testAPIToken, pgPassword, tc.key} {
				if secret != "" {
					require.NotContains(t, vErr, secret)
				}
			}
			requireSameRefusal(t, vErr, sCode, sErr)
			_, err := os.Stat(filepath.Join(dir, "c.db-wal"))
			require.ErrorIs(t, err, os.ErrNotExist, "nothing opened the store")
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Setenv("CREDSYNC_TEST_API_TOKEN", testAPIToken)
	t.Setenv("CREDSYNC_ENCRYPTION_KEY", "")
	t.Setenv("CREDSYNC_ENCRYPTION_OLD_KEYS", "")
	dir := t.TempDir()
	_, key := selfSigned(t)
	kp := writeFile(t, dir, "s.key", key)
	path := preflightConfig(t, dir, "  tls: {cert_file: "+filepath.Join(dir, "missing.pem")+", key_file: "+kp+"}\n",
		sqliteStore(filepath.Join(dir, "nope", "c.db")))

	vCode, _, vErr, sCode, sErr := runBoth(t, path)
	require.Equal(t, exitConfig, vCode, vErr)
	require.Equal(t, fmt.Sprintf("invalid: %s: 3 problems:\n", path), strings.SplitAfter(vErr, "\n")[0])
	for _, w := range []string{
		"\n  - server.tls.cert_file " + filepath.Join(dir, "missing.pem") + " cannot be read",
		"\n  - no encryption key: set CREDSYNC_ENCRYPTION_KEY",
		"\n  - store.dsn " + filepath.Join(dir, "nope", "c.db") + ": the directory " + filepath.Join(dir, "nope") + " does not exist",
	} {
		require.Contains(t, vErr, w)
	}
	requireSameRefusal(t, vErr, sCode, sErr)
}

func TestValidateAcceptsWhatServeRuns(t *testing.T) {
	t.Setenv("CREDSYNC_TEST_API_TOKEN", testAPIToken)
	t.Setenv("CREDSYNC_ENCRYPTION_OLD_KEYS", "")
	dir := t.TempDir()
	cert, key := selfSigned(t)
	cp, kp, ca := writeFile(t, dir, "s.pem", cert), writeFile(t, dir, "s.key", key), writeFile(t, dir, "ca.pem", cert)
	db := filepath.Join(dir, "data", "c.db")
	require.NoError(t, os.Mkdir(filepath.Dir(db), 0o700))
	path := preflightConfig(t, dir, "  listen: 127.0.0.1:8443\n  tls: {cert_file: "+cp+", key_file: "+kp+", client_ca_file: "+ca+"}\n", sqliteStore(db))

	t.Setenv("CREDSYNC_ENCRYPTION_KEY", newKey(32))
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, run([]string{"validate", "--config", path}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "is valid: 1 platform(s), 1 source(s)")
	entries, err := os.ReadDir(filepath.Dir(db))
	require.NoError(t, err)
	require.Empty(t, entries, "validate creates no database and leaves no temporary file")

	t.Setenv("CREDSYNC_ENCRYPTION_KEY", "")
	errb.Reset()
	require.Equal(t, exitConfig, run([]string{"validate", "--config", path}, &out, &errb))
	require.Contains(t, errb.String(), "no encryption key")
	errb.Reset()
	require.Equal(t, exitOK, run([]string{"validate", "--config", path, "--allow-no-encryption-key"}, &out, &errb),
		"validate takes serve's --allow-no-encryption-key: %s", errb.String())
}
