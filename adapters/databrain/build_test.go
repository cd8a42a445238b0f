package databrain

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/credsync/credsync/core"
)

const (
	pgTarget    = "datasource_type: postgres\nname: pg\nfields: {host: h, port: 5432, username: dbuser, database: d, schema: s}"
	pgNoUser    = "datasource_type: postgres\nname: pg\nfields: {host: h, port: 5432, database: d, schema: s}"
	pgSSH       = "datasource_type: postgres\nname: pg\nfields: {host: h, port: 5432, username: u, database: d, schema: s, sshTunnel: enable, sshHost: b, sshPort: 22, sshUsername: t}"
	sfTarget    = "datasource_type: snowflake\nname: sf\nfields: {host: h, username: u, role: r, warehouse: w, database: d, schema: s}"
	sfNoUser    = "datasource_type: snowflake\nname: sf\nfields: {host: h, role: r, warehouse: w, database: d, schema: s}"
	bqTarget    = "datasource_type: bigquery\nname: bq\nfields: {project_id: p, dataset_location: US}"
	mysqlNoUser = "datasource_type: mysql\nname: my\nfields: {host: h, port: 3306}"
	esNoUser    = "datasource_type: elasticsearch\nname: es\nfields: {server_type: elastic-cloud, cloud_id: c}"
)

func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name, target, cred string
		field, contains    string
	}{
		{"token to postgres", pgTarget, credToken, "credential.type", "takes only password credentials, not token"},
		{"key_pair to postgres", pgTarget, credKeyPair, "credential.type", "not key_pair"},
		{"password to bigquery", bqTarget, credPassword, "credential.type", "takes only gcp_service_account"},
		{"aws to snowflake", sfTarget, credAWS, "credential.type", "takes only password, key_pair credentials"},
		{"password to databricks", "datasource_type: databricks\nname: d\nfields: {serverHostname: s, httpPath: p}", credPassword, "credential.type", "takes only token"},
		{"token to firebolt", "datasource_type: firebolt\nname: f\nfields: {account: a, database: d, engineName: e}", credToken, "credential.type", "takes only oauth_client"},
		{"oauth to athena", "datasource_type: athena\nname: a\nfields: {database: d, outputBucket: o, s3Region: r}", credOAuth, "credential.type", "takes only aws_access_key"},
		{"no username anywhere (postgres)", pgNoUser, credPassword, "credential.username", "username is required"},
		{"no user anywhere (mysql)", mysqlNoUser, credPassword, "credential.username", "user is required"},
		{"no username anywhere (snowflake key pair)", sfNoUser, credKeyPairNoPP, "credential.username", "username is required"},
		{"no username anywhere (elasticsearch)", esNoUser, credPassword, "credential.username", "username is required unless disableAuth is true"},
		{"ssh enabled, no ssh key", pgSSH, credPassword, "credential.ssh_tunnel.private_key", "SSH tunnel (sshTunnel: enable)"},
		{"ssh key with passphrase", pgSSH, `{"type":"password","password":` + mustJSON(pw1) + `,"ssh_tunnel":{"private_key":` + mustJSON(sshKey1) + `,"passphrase":` + mustJSON(sshPass1) + `}}`,
			"credential.ssh_tunnel.passphrase", "no field for an SSH key passphrase"},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.target(t, tc.target)
			_, err := a.Build(cred(t, tc.cred))
			if err == nil {
				t.Fatal("want an error")
			}
			ie := asInputError(t, err)
			if len(ie.Problems) == 0 || ie.Problems[0].Field != tc.field {
				t.Fatalf("problems = %+v, want field %s", ie.Problems, tc.field)
			}
			if !strings.Contains(ie.Problems[0].Message, tc.contains) {
				t.Errorf("message %q lacks %q", ie.Problems[0].Message, tc.contains)
			}
			if !strings.Contains(ie.Error(), a.name) {
				t.Errorf("error %q does not name the datasource %q", ie.Error(), a.name)
			}
			assertNoSecret(t, "error", ie.Error())
		})
	}
	if len(e.fake.Requests()) != 0 {
		t.Errorf("Build sent %d requests", len(e.fake.Requests()))
	}
}

func TestBuildUsernameFromCredential(t *testing.T) {
	e := newEnv(t)
	a := e.target(t, pgNoUser)
	req, err := a.Build(cred(t, credPasswordUser))
	if err != nil {
		t.Fatal(err)
	}
	if got := credsOf(t, req)["username"]; got != "dbuser_rotated" {
		t.Errorf("username = %v", got)
	}
	// The credential's username overrides the configured one, without touching the config.
	b := e.target(t, pgTarget)
	req, _ = b.Build(cred(t, credPasswordUser))
	if got := credsOf(t, req)["username"]; got != "dbuser_rotated" {
		t.Errorf("override: username = %v", got)
	}
	req, _ = b.Build(cred(t, credPassword))
	if got := credsOf(t, req)["username"]; got != "dbuser" {
		t.Errorf("after an override, username = %v, want the configured dbuser", got)
	}
}

func TestBuildSnowflakeKeyPairWithoutPassphrase(t *testing.T) {
	e := newEnv(t)
	a := e.target(t, sfTarget)
	req, err := a.Build(cred(t, credKeyPairNoPP))
	if err != nil {
		t.Fatal(err)
	}
	c := credsOf(t, req)
	if c["credentials"] != snowflakeKeyPair || c["privateKey"] != privKey1 || c["username"] != "u" {
		t.Errorf("credentials = %v", c)
	}
	for _, k := range []string{"privateKeyPass", "password"} {
		if _, ok := c[k]; ok {
			t.Errorf("%s sent", k)
		}
	}
}

func TestBuildIgnoresSSHTunnelWhenNotTunnelling(t *testing.T) {
	e := newEnv(t)
	for _, src := range []string{pgTarget, sfTarget, mysqlNoUser + "\n", "datasource_type: trino\nname: t\nfields: {host: h, port: 1, catalog: c, schema: s, username: u, sshTunnel: disable}"} {
		a := e.target(t, src)
		c := credPasswordSSH
		if a.dsType == "mysql" {
			c = `{"type":"password","username":"u","password":` + mustJSON(pw1) + `,"ssh_tunnel":{"private_key":` + mustJSON(sshKey1) + `}}`
		}
		req, err := a.Build(cred(t, c))
		if err != nil {
			t.Fatalf("%s: %v", a.dsType, err)
		}
		if _, ok := credsOf(t, req)["sshPrivateKey"]; ok {
			t.Errorf("%s: sshPrivateKey sent to a datasource that does not tunnel", a.dsType)
		}
	}
}

// TestBuildPureAndRedacted: Build does no I/O, gives the same request twice, and the dry run
// (json.Marshal) never shows a secret while the wire body does.
func TestBuildPureAndRedacted(t *testing.T) {
	e := newEnv(t)
	for _, tc := range goldenCases {
		a := e.target(t, tc.target)
		c := cred(t, tc.cred)
		r1, err := a.Build(c)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		r2, _ := a.Build(c)
		w1, _ := r1.WireBody()
		w2, _ := r2.WireBody()
		if string(w1) != string(w2) {
			t.Errorf("%s: Build is not deterministic", tc.file)
		}
		dry, err := json.Marshal(r1)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, tc.file+" dry run", string(dry))
		revealed := false
		for _, s := range c.Secrets() {
			if strings.Contains(string(w1), mustJSON(s)[1:len(mustJSON(s))-1]) {
				revealed = true
			}
		}
		if !revealed {
			t.Errorf("%s: the wire body carries no secret", tc.file)
		}
		if r1.Method != "PUT" || r1.Path != "/api/v2/datasource" {
			t.Errorf("%s: %s %s", tc.file, r1.Method, r1.Path)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Build made %d requests", n)
	}
}

func TestValidateCredentials(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"name": "n", "host": "h", "username": "u", "role": "r", "warehouse": "w", "database": "d", "schema": "s"}
	}
	c := base()
	c["credentials"] = snowflakePassword
	if ps := validateCredentials("snowflake", c); !hasProblem(ps, "password", "when credentials is") {
		t.Errorf("snowflake u/p without password: %v", ps)
	}
	c["credentials"] = snowflakeKeyPair
	if ps := validateCredentials("snowflake", c); !hasProblem(ps, "privateKey", "when credentials is") {
		t.Errorf("snowflake key pair without key: %v", ps)
	}
	c["privateKey"] = core.NewSecret("k")
	if ps := validateCredentials("snowflake", c); len(ps) != 0 {
		t.Errorf("valid snowflake: %v", ps)
	}
	c["credentials"] = "oauth"
	if ps := validateCredentials("snowflake", c); !hasProblem(ps, "credentials", "must be one of") {
		t.Errorf("bad snowflake method: %v", ps)
	}
	if ps := validateCredentials("oracle", base()); !hasProblem(ps, "datasourceType", "must be one of") {
		t.Errorf("unknown type: %v", ps)
	}
	pg := map[string]any{"name": "n", "host": "h", "port": json.Number("5432"), "username": "u", "password": "p", "database": "d", "schema": "s"}
	if ps := validateCredentials("postgres", pg); len(ps) != 0 {
		t.Errorf("valid postgres: %v", ps)
	}
	for v, want := range map[any]string{json.Number("5432.5"): "must be a number", "5432": "must be a number", json.Number("0"): "between", 70000.0: "between", nil: "must be a number"} {
		pg["port"] = v
		if ps := validateCredentials("postgres", pg); !hasProblem(ps, "port", want) {
			t.Errorf("port %#v: %v", v, ps)
		}
	}
	pg["port"] = 5432
	pg["sslMode"] = "true"
	if ps := validateCredentials("postgres", pg); !hasProblem(ps, "sslMode", "must be a boolean") {
		t.Errorf("sslMode string: %v", ps)
	}
	delete(pg, "sslMode")
	pg["extra"] = 1
	if ps := validateCredentials("postgres", pg); !hasProblem(ps, "extra", "is not a field of postgres") {
		t.Errorf("unknown field: %v", ps)
	}
	delete(pg, "extra")
	pg["username"] = ""
	if ps := validateCredentials("postgres", pg); !hasProblem(ps, "username", "must not be empty") {
		t.Errorf("empty username: %v", ps)
	}
	es := map[string]any{"name": "n", "server_type": "self-managed", "server_url": "u", "disableAuth": true}
	if ps := validateCredentials("opensearch", es); len(ps) != 0 {
		t.Errorf("self-managed without auth is valid for Databrain: %v", ps)
	}
	es["server_type"] = "open-cloud"
	es["cloud_id"] = "c"
	if ps := validateCredentials("opensearch", es); !hasProblem(ps, "disableAuth", "only when") {
		t.Errorf("disableAuth on cloud: %v", ps)
	}
	bq := map[string]any{"name": "n", "project_id": "p", "dataset_location": "US", "credentials_json": "not json"}
	if ps := validateCredentials("bigquery", bq); !hasProblem(ps, "credentials_json", "JSON string") {
		t.Errorf("bad credentials_json: %v", ps)
	}
	if ps := validateTenancy(map[string]any{"tenancyLevel": "TABLE", "clientColumnType": "NUMBER", "schemaName": "s", "tableName": "t", "tableClientNameColumn": "c", "tablePrimaryKeyColumn": "id"}); len(ps) != 0 {
		t.Errorf("valid tenancy: %v", ps)
	}
	if ps := validateTenancy(map[string]any{"tenancyLevel": 1}); !hasProblem(ps, "tenancySettings.tenancyLevel", "must be a string") {
		t.Errorf("tenancy level number: %v", ps)
	}
}

func hasProblem(ps []problem, field, contains string) bool {
	for _, p := range ps {
		if p.field == field && strings.Contains(p.msg, contains) {
			return true
		}
	}
	return false
}

// credsOf returns the wire "credentials" object of a request, secrets revealed.
func credsOf(t *testing.T, r core.Request) map[string]any {
	t.Helper()
	b, err := r.WireBody()
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Credentials map[string]any `json:"credentials"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body.Credentials
}

func TestAcceptsIsACopy(t *testing.T) {
	e := newEnv(t)
	a := e.target(t, sfTarget)
	got := a.Accepts()
	got[0] = core.TypeToken
	if !reflect.DeepEqual(a.Accepts(), []core.CredentialType{core.TypePassword, core.TypeKeyPair}) {
		t.Error("Accepts exposes the adapter's slice")
	}
}
