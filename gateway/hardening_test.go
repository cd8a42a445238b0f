package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
	"github.com/credsync/credsync/internal/demo"
	"github.com/credsync/credsync/internal/keyring"
)

const hardToken = "hardening-api-token-0123456789"

// serve starts a gateway on the demo fakes with edit applied to the demo config.
func serve(t *testing.T, edit func(string) string) (addr string) {
	t.Helper()
	fakes, err := demo.StartFakes()
	require.NoError(t, err)
	t.Cleanup(fakes.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	env := fakes.Env(hardToken)
	text := edit(fakes.Config(l.Addr().String(), filepath.Join(t.TempDir(), "credsync.db")))
	cfg, err := config.Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	gw, err := gateway.New(context.Background(), cfg, zap.NewNop(), gateway.Options{ShutdownGrace: 2 * time.Second, Keys: keyring.Source{Key: demo.NewKey()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

func get(t *testing.T, c *http.Client, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHashedTokenInConfig(t *testing.T) {
	sum := sha256.Sum256([]byte(hardToken))
	addr := serve(t, func(s string) string {
		return strings.Replace(s, "      token: ${CREDSYNC_API_TOKEN}\n", "      token_sha256: "+hex.EncodeToString(sum[:])+"\n", 1)
	})
	resp, _ := get(t, http.DefaultClient, "http://"+addr+"/v1/sources", hardToken)
	require.Equal(t, 200, resp.StatusCode, "the clear token matches its configured hash")
	resp, _ = get(t, http.DefaultClient, "http://"+addr+"/v1/sources", hex.EncodeToString(sum[:]))
	require.Equal(t, 401, resp.StatusCode, "the hash itself is not a token")
}

func TestPerTokenRateLimit(t *testing.T) {
	addr := serve(t, func(s string) string {
		return strings.Replace(s, "  rotation_deadline: 2m\n", "  rotation_deadline: 2m\n  rate_limit: {requests_per_second: 0.5, burst: 2}\n", 1)
	})
	for i := 0; i < 2; i++ {
		resp, _ := get(t, http.DefaultClient, "http://"+addr+"/v1/sources", hardToken)
		require.Equal(t, 200, resp.StatusCode)
	}
	resp, body := get(t, http.DefaultClient, "http://"+addr+"/v1/sources", hardToken)
	require.Equal(t, 429, resp.StatusCode, body)
	require.Contains(t, body, `"code":"rate_limited"`)
	require.Equal(t, "2", resp.Header.Get("Retry-After"), "one request every 2 s")
	resp, _ = get(t, http.DefaultClient, "http://"+addr+"/healthz", "")
	require.Equal(t, 200, resp.StatusCode, "health checks are not rate limited")
}

func TestMetricsEndpoint(t *testing.T) {
	addr := serve(t, func(s string) string { return s })
	fakesClient := &http.Client{Timeout: time.Minute}
	rot, err := demo.Submit(context.Background(), fakesClient, "http://"+addr, hardToken, demo.Rotations()[0])
	require.NoError(t, err)
	resp, body := get(t, http.DefaultClient, "http://"+addr+"/metrics", "")
	require.Equal(t, 200, resp.StatusCode)
	for _, want := range []string{
		`credsync_rotations_total{status="succeeded"} 1`,
		`credsync_target_updates_total{platform="rivergen",status="succeeded",vendor="rivergen"} 1`,
		`credsync_vendor_request_duration_seconds_count{class="2xx",op="update",platform="felt",vendor="felt"} 1`,
		`credsync_store_operation_duration_seconds_count{op="create_rotation",result="ok"} 1`,
		`credsync_api_requests_total{code="200",route="/v1/rotations"} 1`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, rot.ID, "no rotation id in any label")
	require.Regexp(t, regexp.MustCompile(`credsync_rotations_in_flight 0`), body)
}

type pki struct {
	caPEM, serverCert, serverKey, clientCert, clientKey []byte
	pool                                                *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leaf := func(cn string, usage x509.ExtKeyUsage, serial int64) ([]byte, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		kb, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	p := pki{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.serverCert, p.serverKey = leaf("127.0.0.1", x509.ExtKeyUsageServerAuth, 2)
	p.clientCert, p.clientKey = leaf("rotation-job", x509.ExtKeyUsageClientAuth, 3)
	return p
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestTLSAndMutualTLS(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	cert, key, ca := write(t, dir, "s.pem", p.serverCert), write(t, dir, "s.key", p.serverKey), write(t, dir, "ca.pem", p.caPEM)

	addr := serve(t, func(s string) string {
		return strings.Replace(s, "  rotation_deadline: 2m\n", "  rotation_deadline: 2m\n  tls: {cert_file: "+cert+", key_file: "+key+"}\n", 1)
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	resp, _ := get(t, client, "https://"+addr+"/v1/sources", hardToken)
	require.Equal(t, 200, resp.StatusCode)
	resp, _ = get(t, http.DefaultClient, "http://"+addr+"/healthz", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to a TLS port is refused")

	mtls := serve(t, func(s string) string {
		return strings.Replace(s, "  rotation_deadline: 2m\n", "  rotation_deadline: 2m\n  tls: {cert_file: "+cert+", key_file: "+key+", client_ca_file: "+ca+"}\n", 1)
	})
	_, err := client.Get("https://" + mtls + "/healthz")
	require.Error(t, err, "without a client certificate the handshake fails")
	pair, err := tls.X509KeyPair(p.clientCert, p.clientKey)
	require.NoError(t, err)
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{pair}}}}
	resp, _ = get(t, withCert, "https://"+mtls+"/v1/sources", hardToken)
	require.Equal(t, 200, resp.StatusCode)
}

func TestStatusTokensOpenOnlyTheStatusPage(t *testing.T) {
	const statusToken = "wallboard-status-token-0123"
	addr := serve(t, func(s string) string {
		return strings.Replace(s, "      token: ${CREDSYNC_API_TOKEN}\n", "      token: ${CREDSYNC_API_TOKEN}\n  status_tokens:\n    - name: wallboard\n      token: "+statusToken+"\n", 1)
	})
	resp, body := get(t, http.DefaultClient, "http://"+addr+"/", statusToken)
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, "warehouse-pg")
	resp, _ = get(t, http.DefaultClient, "http://"+addr+"/v1/sources", statusToken)
	require.Equal(t, 401, resp.StatusCode, "a status token opens no API route")
}

func TestConfiguredScopesBindTheAPI(t *testing.T) {
	const scoped = "scoped-reader-token-0123456789"
	addr := serve(t, func(s string) string {
		return strings.Replace(s, "      token: ${CREDSYNC_API_TOKEN}\n", "      token: ${CREDSYNC_API_TOKEN}\n    - name: pg-reader\n      token: "+scoped+
			"\n      sources: [\"warehouse-*\"]\n      actions: [read]\n", 1)
	})
	resp, body := get(t, http.DefaultClient, "http://"+addr+"/v1/sources", scoped)
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, `"name":"warehouse-pg"`)
	require.NotContains(t, body, `"name":"snowflake-key"`, "only the sources its patterns match")
	resp, body = get(t, http.DefaultClient, "http://"+addr+"/v1/pauses", scoped)
	require.Equal(t, 403, resp.StatusCode, body)
	require.Contains(t, body, `token \"pg-reader\" may not admin`)
	resp, _ = get(t, http.DefaultClient, "http://"+addr+"/v1/pauses", hardToken)
	require.Equal(t, 200, resp.StatusCode, "the unscoped token may")
}
