package databrain

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/adaptertest"
)

func TestNewPlatformRejectsBadBaseURL(t *testing.T) {
	if _, err := NewPlatform(vendorhttp.Platform{Name: "db", BaseURL: "ftp://x", Token: core.NewSecret("t")}); err == nil {
		t.Fatal("want an error for a non-http base_url")
	}
	if _, err := NewPlatform(vendorhttp.Platform{Name: "db", BaseURL: "https://api.usedatabrain.com", Token: core.NewSecret("t")}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigGood(t *testing.T) {
	e := newEnv(t)
	// The DESIGN.md example, and every golden case.
	a := e.target(t, `datasource_type: postgres
name: production-postgres
fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}`)
	if a.DatasourceType() != "postgres" || a.DatasourceName() != "production-postgres" {
		t.Errorf("got %s/%s", a.DatasourceType(), a.DatasourceName())
	}
	want := map[string]any{"host": "db.internal", "port": 5432, "username": "dbuser", "database": "analytics", "schema": "public"}
	if !reflect.DeepEqual(a.fields, want) {
		t.Errorf("fields = %#v, want %#v", a.fields, want)
	}
	if !reflect.DeepEqual(a.Accepts(), []core.CredentialType{core.TypePassword}) {
		t.Errorf("Accepts = %v", a.Accepts())
	}
	for _, tc := range goldenCases {
		if _, err := e.platform.NewTarget(parseNode(t, tc.target)); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
	}

	// Optional keys: verify: true, an unquoted number for a string field, username from the
	// credential only, tenancy at DATABASE level, ${VAR}-expanded port (re-tagged int).
	for _, src := range []string{
		"datasource_type: mysql\nname: m\nverify: true\nfields: {host: h, port: 3306}",
		"datasource_type: singlestore\nname: s\nfields: {host: h, port: 3306, user: u, database: 2024}",
		"datasource_type: postgres\nname: p\nfields: {host: h, port: 5432, database: d, schema: s}\ntenancy_settings: {tenancyLevel: DATABASE}",
		"datasource_type: elasticsearch\nname: es\nfields: {server_type: self-managed, server_url: 'http://es:9200', disableAuth: false}",
		"datasource_type: mssql\nname: ms\nfields: {server: s, port: 1433}",
	} {
		if _, err := e.platform.NewTarget(parseNode(t, src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}

	s := e.target(t, "datasource_type: singlestore\nname: s\nfields: {host: h, port: 3306, user: u, database: 2024}")
	if s.fields["database"] != "2024" {
		t.Errorf("database = %#v, want the text 2024", s.fields["database"])
	}
	sf := e.target(t, goldenCases[0].target)
	if !reflect.DeepEqual(sf.Accepts(), []core.CredentialType{core.TypePassword, core.TypeKeyPair}) {
		t.Errorf("snowflake Accepts = %v", sf.Accepts())
	}
}

func TestConfigAcceptsPerType(t *testing.T) {
	want := map[string][]core.CredentialType{
		"snowflake": {core.TypePassword, core.TypeKeyPair}, "postgres": {core.TypePassword}, "redshift": {core.TypePassword},
		"cockroachdb": {core.TypePassword}, "trino": {core.TypePassword}, "mysql": {core.TypePassword},
		"mongodb": {core.TypePassword}, "clickhouse": {core.TypePassword}, "singlestore": {core.TypePassword},
		"mssql": {core.TypePassword}, "bigquery": {core.TypeGCPServiceAccount}, "databricks": {core.TypeToken},
		"elasticsearch": {core.TypePassword}, "opensearch": {core.TypePassword}, "firebolt": {core.TypeOAuthClient},
		"athena": {core.TypeAWSAccessKey}, "csv": {core.TypeAWSAccessKey}, "awss3": {core.TypeAWSAccessKey},
	}
	if len(want) != len(types) {
		t.Fatalf("%d types in the table, %d expected", len(types), len(want))
	}
	e := newEnv(t)
	for _, tc := range goldenCases {
		a := e.target(t, tc.target)
		if !reflect.DeepEqual(a.Accepts(), want[a.dsType]) {
			t.Errorf("%s Accepts = %v, want %v", a.dsType, a.Accepts(), want[a.dsType])
		}
	}
}

func TestConfigBad(t *testing.T) {
	cases := []struct {
		name, src string
		line      string // "line N"
		contains  string
	}{
		{"unknown key", "datasource_type: postgres\nname: p\nsource_id: x\n", "line 3", `unknown key "source_id"`},
		{"missing datasource_type", "name: p\nfields: {host: h}\n", "line 1", "datasource_type is required"},
		{"unknown datasource_type", "name: p\ndatasource_type: oracle\n", "line 2", `"oracle" is not a Databrain datasource type`},
		{"missing name", "datasource_type: postgres\nfields: {host: h}\n", "line 1", "name is required"},
		{"empty name", "datasource_type: postgres\nname: ''\n", "line 2", "name is required"},
		{"padded name", "datasource_type: postgres\nname: ' p '\n", "line 2", "spaces"},
		{"verify false", "datasource_type: postgres\nname: p\nverify: false\n", "line 3", "Databrain tests the connection"},
		{"fields not a mapping", "datasource_type: postgres\nname: p\nfields: [host]\n", "line 3", "fields must be a mapping"},
		{"unknown field", "datasource_type: postgres\nname: p\nfields:\n  host: h\n  hostname: h\n", "line 5", `"hostname" is not a field of Databrain postgres`},
		{"username for mysql", "datasource_type: mysql\nname: m\nfields:\n  host: h\n  port: 3306\n  username: u\n", "line 6", `uses "user", not "username"`},
		{"host for mssql", "datasource_type: mssql\nname: m\nfields:\n  host: h\n", "line 4", `uses "server", not "host"`},
		{"name in fields", "datasource_type: postgres\nname: p\nfields:\n  name: other\n", "line 4", "fields.name is not allowed"},
		{"password in fields", "datasource_type: postgres\nname: p\nfields:\n  host: h\n  password: hunter2\n", "line 5", `"password" is a secret`},
		{"sshPrivateKey in fields", "datasource_type: trino\nname: t\nfields:\n  sshPrivateKey: k\n", "line 4", "credential.ssh_tunnel.private_key"},
		{"token in fields", "datasource_type: databricks\nname: d\nfields: {serverHostname: s, httpPath: p, token: x}\n", "line 3", `"token" is a secret`},
		{"credentials_json in fields", "datasource_type: bigquery\nname: b\nfields:\n  credentials_json: '{}'\n", "line 4", "is a secret"},
		{"client_secret in fields", "datasource_type: firebolt\nname: f\nfields:\n  client_secret: x\n", "line 4", "is a secret"},
		{"s3SecretAccessKey in fields", "datasource_type: athena\nname: a\nfields:\n  s3SecretAccessKey: x\n", "line 4", "is a secret"},
		{"privateKeyPass in fields", "datasource_type: snowflake\nname: s\nfields:\n  privateKeyPass: x\n", "line 4", "is a secret"},
		{"snowflake credentials in fields", "datasource_type: snowflake\nname: s\nfields:\n  credentials: username/password\n", "line 4", "set by credsync from the credential type"},
		{"client_id in fields", "datasource_type: firebolt\nname: f\nfields:\n  client_id: x\n", "line 4", "comes from the rotated credential (credential.client_id)"},
		{"s3AccessKeyId in fields", "datasource_type: csv\nname: c\nfields:\n  s3AccessKeyId: x\n", "line 4", "credential.access_key_id"},
		{"port quoted", "datasource_type: postgres\nname: p\nfields:\n  port: '5432'\n", "line 4", "fields.port must be a number"},
		{"port out of range", "datasource_type: postgres\nname: p\nfields:\n  host: h\n  port: 70000\n", "line 5", "between 1 and 65535"},
		{"port zero", "datasource_type: mysql\nname: m\nfields:\n  port: 0\n", "line 4", "between 1 and 65535"},
		{"sshPort out of range", "datasource_type: postgres\nname: p\nfields:\n  sshPort: 65536\n", "line 4", "between 1 and 65535"},
		{"sslMode string", "datasource_type: postgres\nname: p\nfields:\n  sslMode: 'true'\n", "line 4", "fields.sslMode must be a boolean"},
		{"host not a string", "datasource_type: postgres\nname: p\nfields:\n  host: true\n", "line 4", "fields.host must be a string"},
		{"host null", "datasource_type: postgres\nname: p\nfields:\n  host:\n", "line 4", "fields.host must be a string"},
		{"duplicate field", "datasource_type: postgres\nname: p\nfields: {host: a, host: b}\n", "line 3", ""},
		{"sshTunnel bad value", "datasource_type: postgres\nname: p\nfields:\n  sshTunnel: yes-please\n", "line 4", `"enable", "disable"`},
		{"missing required host", "datasource_type: postgres\nname: p\nfields:\n  port: 5432\n  database: d\n  schema: s\n", "line 4", "fields.host is required"},
		{"no fields at all", "datasource_type: databricks\nname: d\n", "line 1", "fields.serverHostname is required"},
		{"ssh enable without host", "datasource_type: postgres\nname: p\nfields:\n  host: h\n  port: 5432\n  database: d\n  schema: s\n  sshTunnel: enable\n  sshPort: 22\n  sshUsername: u\n", "line 4", `fields.sshHost is required when sshTunnel is "enable"`},
		{"ssh enable without port", "datasource_type: trino\nname: t\nfields: {host: h, port: 1, catalog: c, schema: s, sshTunnel: enable, sshHost: b, sshUsername: u}\n", "line 3", "fields.sshPort is required"},
		{"es cloud without cloud_id", "datasource_type: elasticsearch\nname: e\nfields:\n  server_type: elastic-cloud\n", "line 4", `fields.cloud_id is required when server_type is "elastic-cloud"`},
		{"os open-cloud without cloud_id", "datasource_type: opensearch\nname: e\nfields:\n  server_type: open-cloud\n", "line 4", "fields.cloud_id is required"},
		{"es self-managed without url", "datasource_type: elasticsearch\nname: e\nfields:\n  server_type: self-managed\n", "line 4", "fields.server_url is required"},
		{"es bad server_type", "datasource_type: elasticsearch\nname: e\nfields:\n  server_type: on-prem\n", "line 4", "must be one of"},
		{"es disableAuth on cloud", "datasource_type: elasticsearch\nname: e\nfields:\n  server_type: elastic-cloud\n  cloud_id: c\n  disableAuth: true\n", "line 6", `may be true only when server_type is "self-managed"`},
		{"es disableAuth self-managed", "datasource_type: opensearch\nname: e\nfields:\n  server_type: self-managed\n  server_url: u\n  disableAuth: true\n", "line 6", "nothing to rotate"},
		{"csv bad tableLevel", "datasource_type: csv\nname: c\nfields:\n  bucketName: b\n  s3Region: r\n  tableLevel: Files\n", "line 6", `"File", "Folder"`},
		{"bigquery missing project", "datasource_type: bigquery\nname: b\nfields:\n  dataset_location: US\n", "line 4", "fields.project_id is required"},
		{"snowflake missing role", "datasource_type: snowflake\nname: s\nfields: {host: h, username: u, warehouse: w, database: d, schema: s}\n", "line 3", "fields.role is required"},
		{"port for snowflake", "datasource_type: snowflake\nname: s\nfields:\n  port: 443\n", "line 4", "have no port field"},
		{"tenancy not a mapping", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings: TABLE\n", "line 4", "tenancy_settings must be a mapping"},
		{"tenancy unknown key", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: TABLE\n  tenancy_level: TABLE\n", "line 6", `unknown tenancy setting "tenancy_level"`},
		{"tenancy missing level", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tableName: t\n", "line 5", "tenancyLevel is required"},
		{"tenancy bad level", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: SCHEMA\n", "line 5", `must be "TABLE" or "DATABASE"`},
		{"tenancy TABLE missing tableName", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: TABLE\n  clientColumnType: NUMBER\n  schemaName: s\n  tableClientNameColumn: c\n  tablePrimaryKeyColumn: id\n", "line 5", "tenancy_settings.tableName is required when tenancyLevel is \"TABLE\""},
		{"tenancy bad column type", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: TABLE\n  clientColumnType: UUID\n  schemaName: s\n  tableName: t\n  tableClientNameColumn: c\n  tablePrimaryKeyColumn: id\n", "line 6", `must be "NUMBER" or "STRING"`},
		{"tenancy DATABASE with table keys", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: DATABASE\n  tableName: t\n", "line 6", "applies only when tenancyLevel is \"TABLE\""},
		{"tenancy value not a string", "datasource_type: postgres\nname: p\nfields: {host: h, port: 1, database: d, schema: s}\ntenancy_settings:\n  tenancyLevel: [TABLE]\n", "line 5", "must be a non-empty string"},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.src), &doc); err != nil {
				// yaml.v3 itself refuses some documents (duplicate keys); that is a load error too.
				if !strings.Contains(err.Error(), tc.line) {
					t.Fatalf("yaml error %v lacks %q", err, tc.line)
				}
				return
			}
			_, err := e.platform.NewTarget(doc.Content[0])
			if err == nil {
				t.Fatalf("want an error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.line+":") {
				t.Errorf("error %q lacks %q", err, tc.line)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q lacks %q", err, tc.contains)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Vendor{
		New: func(t *testing.T) (core.Adapter, adaptertest.Fake) {
			e := newEnv(t)
			e.fake.AddDatasource("production-postgres", "postgres")
			return e.target(t, "datasource_type: postgres\nname: production-postgres\n"+
				"fields: {host: db.internal, port: 5432, username: u, database: d, schema: public}"), e.fake
		},
		Good:    cred(t, `{"type":"password","password":"conformance-Secret-7c1d9e"}`),
		Secret:  "conformance-Secret-7c1d9e",
		Refused: cred(t, `{"type":"aws_assume_role","role_arn":"arn:aws:iam::1:role/r","role_session_name":"s"}`),
	})
}
