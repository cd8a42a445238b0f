package databrain

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters/databrain/databrainfake"
	"github.com/credsync/credsync/core"
)

// The fake (package databrainfake) is a second reading of seed 002, not a copy of the adapter's;
// it imports nothing of this package (adapters' TestFakesImportNoAdapter checks). These tests
// compare the two readings: the fake accepts every request the adapter builds, it refuses what a
// wrong entry in the adapter's table would build, and both answer hand-written bodies (written
// from the seed's field lists) as the seed says.

// sampleCred is a credential of type ct for any datasource; the password one carries an SSH key
// too (sent only to targets with sshTunnel: enable).
func sampleCred(t *testing.T, ct core.CredentialType) core.Credential {
	t.Helper()
	switch ct {
	case core.TypePassword:
		return cred(t, credPasswordSSH)
	case core.TypeKeyPair:
		return cred(t, credKeyPair)
	case core.TypeToken:
		return cred(t, credToken)
	case core.TypeOAuthClient:
		return cred(t, credOAuth)
	case core.TypeGCPServiceAccount:
		return cred(t, credGCP)
	case core.TypeAWSAccessKey:
		return cred(t, credAWS)
	}
	t.Fatalf("no sample credential of type %s", ct)
	return core.Credential{}
}

// configFrom writes a target block from the adapter's own table: every field the config may
// hold, with a value of the kind the table says, the first allowed value for a restricted one
// unless pick names another. Nothing in it is a hand-written field name, so a wrong name or kind
// in the table reaches the fake as the table has it.
func configFrom(t *testing.T, dsType, name string, spec *typeSpec, pick map[string]string) string {
	t.Helper()
	fields := map[string]any{}
	for i, f := range spec.fields {
		if f.origin != fromConfig && f.origin != fromEither {
			continue
		}
		switch f.kind {
		case kindPort:
			fields[f.name] = 1000 + i
		case kindBool:
			fields[f.name] = false
		default:
			switch {
			case pick[f.name] != "":
				fields[f.name] = pick[f.name]
			case len(f.enum) > 0:
				fields[f.name] = f.enum[0]
			default:
				fields[f.name] = "x-" + strings.ToLower(f.name)
			}
		}
	}
	b, err := yaml.Marshal(map[string]any{"datasource_type": dsType, "name": name, "fields": fields})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// variants are the enum choices to try for a type: none (every restricted field at its first
// value), then each other value of each restricted config field, one at a time.
func variants(spec *typeSpec) []map[string]string {
	out := []map[string]string{nil}
	for _, f := range spec.fields {
		if f.origin != fromConfig || len(f.enum) == 0 {
			continue
		}
		for _, v := range f.enum[1:] {
			out = append(out, map[string]string{f.name: v})
		}
	}
	return out
}

// TestFakeAcceptsWhatTheAdapterBuilds: for every datasourceType and every credential type it
// takes, the adapter's request (every field its table lets the config hold, each choice of a
// restricted field in turn) is accepted by the fake, and the fake keeps what was sent. The two
// lists of datasourceTypes are the same.
func TestFakeAcceptsWhatTheAdapterBuilds(t *testing.T) {
	if got, want := typeNames(), databrainfake.DatasourceTypes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the adapter knows %v, the fake (seed 002) %v", got, want)
	}
	for _, dsType := range typeNames() {
		spec := types[dsType]
		for _, ct := range spec.accepts {
			for _, pick := range variants(spec) {
				t.Run(fmt.Sprintf("%s/%s/%v", dsType, ct, pick), func(t *testing.T) {
					e := newEnv(t)
					e.fake.AddDatasource("ds", dsType)
					a := e.target(t, configFrom(t, dsType, "ds", spec, pick))
					req, err := a.Build(sampleCred(t, ct))
					if err != nil {
						t.Fatalf("Build: %v", err)
					}
					if _, err := send(t, a, req); err != nil {
						t.Fatalf("the fake refused the adapter's request: %v", err)
					}
					stored, ok := e.fake.Credentials("ds")
					if !ok {
						t.Fatal("nothing stored after a 200")
					}
					sent := req.Body.(map[string]any)["credentials"].(map[string]any)
					if got, want := sortedKeys(stored), sortedKeys(sent); !reflect.DeepEqual(got, want) {
						t.Errorf("stored %v, sent %v", got, want)
					}
				})
			}
		}
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// withSpec replaces the adapter's entry for dsType until the test ends.
func withSpec(t *testing.T, dsType string, spec *typeSpec) {
	t.Helper()
	orig := types[dsType]
	types[dsType] = spec
	t.Cleanup(func() { types[dsType] = orig })
}

// mutated returns a copy of spec with fn applied to its field at index i (fn returning false
// drops the field).
func mutated(spec *typeSpec, i int, fn func(*fieldSpec) bool) *typeSpec {
	c := *spec
	c.fields = nil
	for j, f := range spec.fields {
		if j == i && !fn(&f) {
			continue
		}
		c.fields = append(c.fields, f)
	}
	return &c
}

// TestFakeRefusesAWrongAdapterTable is the problem this fake was rewritten for: a wrong entry in
// the adapter's table (a field renamed, given the wrong JSON type, or left out though the seed
// requires it) must make the fake refuse the adapter's request, not pass both. Each mutation is
// applied to the adapter's table alone; the adapter, consistent with its wrong table, builds the
// request, and the fake answers 400 INVALID_REQUEST_BODY naming the field.
func TestFakeRefusesAWrongAdapterTable(t *testing.T) {
	type mutation struct {
		name string
		fn   func(*fieldSpec) bool
		// applies says whether the mutation is wrong for this field (a field left out is wrong
		// only when the seed requires it); nil: always.
		applies func(dsType string, f fieldSpec) bool
	}
	seedRequires := func(dsType string, f fieldSpec) bool {
		for _, name := range databrainfake.RequiredFields(dsType) {
			if name == f.name {
				return true
			}
		}
		return false
	}
	mutations := []mutation{
		{name: "renamed", fn: func(f *fieldSpec) bool { f.name += "X"; return true }},
		{name: "kind", fn: func(f *fieldSpec) bool {
			if f.kind == kindString {
				f.kind, f.enum = kindPort, nil
			} else {
				f.kind = kindString
			}
			return true
		}},
		{name: "left out", fn: func(*fieldSpec) bool { return false }, applies: seedRequires},
	}
	tried := 0
	var byAdapter, byFake atomic.Int32
	for _, dsType := range typeNames() {
		orig := types[dsType]
		for i, f := range orig.fields {
			if f.origin != fromConfig && f.origin != fromEither {
				continue // the wire name of a credential field is the adapter's code, not its table
			}
			for _, m := range mutations {
				if m.applies != nil && !m.applies(dsType, f) {
					continue
				}
				tried++
				t.Run(dsType+"/"+f.name+"/"+m.name, func(t *testing.T) {
					spec := mutated(orig, i, m.fn)
					if f.origin == fromEither && m.name == "renamed" {
						spec.userKey = f.name + "X" // the user name field renamed throughout
					}
					withSpec(t, dsType, spec)
					e := newEnv(t)
					e.fake.AddDatasource("ds", dsType)
					// The adapter's conditional rules name their fields in code: a rename they
					// depend on is refused by the adapter itself, before any request exists.
					// That is caught too; every other wrong table must be caught by the fake.
					a, err := e.platform.NewTarget(parseNode(t, configFrom(t, dsType, "ds", spec, nil)))
					if err != nil {
						byAdapter.Add(1)
						t.Logf("refused by the adapter's own config check: %v", err)
						return
					}
					req, err := a.Build(sampleCred(t, spec.accepts[0]))
					if err != nil {
						byAdapter.Add(1)
						t.Logf("refused by the adapter's own Build: %v", err)
						return
					}
					byFake.Add(1)
					_, _, err = a.Send(context.Background(), req)
					if err == nil {
						t.Fatal("the fake accepted the request of a wrong adapter table")
					}
					ce := asCoreError(t, err)
					if ce.VendorStatus != 400 || !strings.Contains(ce.Message, "INVALID_REQUEST_BODY") || !strings.Contains(ce.Message, "credentials."+f.name) {
						t.Errorf("want 400 INVALID_REQUEST_BODY about credentials.%s, got %d %s", f.name, ce.VendorStatus, ce.Message)
					}
					if _, ok := e.fake.Credentials("ds"); ok {
						t.Error("the refused request changed the datasource")
					}
				})
			}
		}
	}
	if tried < 100 || int(byFake.Load()) < tried*3/4 {
		t.Fatalf("%d mutations tried, %d reached the fake, %d refused by the adapter itself", tried, byFake.Load(), byAdapter.Load())
	}
	t.Logf("%d mutations of the adapter's table: %d refused by the fake, %d by the adapter's own rules", tried, byFake.Load(), byAdapter.Load())
}

// bodyWith decodes body, sets (or, for a nil value, deletes) credentials keys, and re-encodes it.
func bodyWith(t *testing.T, body string, set map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	c := m["credentials"].(map[string]any)
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	if ts, ok := set["@tenancySettings"]; ok {
		delete(c, "@tenancySettings")
		m["tenancySettings"] = ts
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seedBodies are complete, valid bodies for every datasourceType, written by hand from the field
// groups of seed 002 (the postgres one is the seed's own example).
var seedBodies = map[string]string{
	"postgres": `{"datasourceType":"postgres","credentials":{"name":"production-postgres","host":"new-db.example.com","port":5432,` +
		`"username":"dbuser","password":"newpassword","database":"analytics","schema":"public"}}`,
	"redshift": `{"datasourceType":"redshift","credentials":{"name":"rs","host":"rs.example.com","port":5439,"username":"u","password":"p",` +
		`"database":"dev","schema":"public","sslMode":true}}`,
	"cockroachdb": `{"datasourceType":"cockroachdb","credentials":{"name":"crdb","host":"crdb.example.com","port":26257,"username":"u",` +
		`"password":"p","database":"defaultdb","schema":"public","sshTunnel":"enable","sshHost":"bastion","sshPort":22,` +
		`"sshUsername":"tunnel","sshPrivateKey":"KEY"}}`,
	"snowflake": `{"datasourceType":"snowflake","credentials":{"name":"sf","host":"acme.snowflakecomputing.com","username":"u",` +
		`"role":"r","warehouse":"w","database":"d","schema":"s","credentials":"username/password","password":"p"}}`,
	"bigquery": `{"datasourceType":"bigquery","credentials":{"name":"bq","credentials_json":"{\"type\":\"service_account\"}",` +
		`"project_id":"p","dataset_location":"US","dataset_id":"d"}}`,
	"mysql":       `{"datasourceType":"mysql","credentials":{"name":"my","host":"h","port":3306,"user":"u","password":"p"}}`,
	"mongodb":     `{"datasourceType":"mongodb","credentials":{"name":"mg","host":"h","port":27017,"user":"u","password":"p"}}`,
	"clickhouse":  `{"datasourceType":"clickhouse","credentials":{"name":"ch","host":"h","port":8443,"user":"u","password":"p"}}`,
	"mssql":       `{"datasourceType":"mssql","credentials":{"name":"ms","server":"sql.example.com","port":1433,"user":"u","password":"p"}}`,
	"singlestore": `{"datasourceType":"singlestore","credentials":{"name":"s2","host":"h","port":3306,"user":"u","password":"p","database":"d"}}`,
	"databricks":  `{"datasourceType":"databricks","credentials":{"name":"dbx","serverHostname":"adb.example.net","httpPath":"/sql/1.0/w","token":"t"}}`,
	"elasticsearch": `{"datasourceType":"elasticsearch","credentials":{"name":"es","server_type":"elastic-cloud","cloud_id":"c",` +
		`"username":"u","password":"p"}}`,
	"opensearch": `{"datasourceType":"opensearch","credentials":{"name":"os","server_type":"self-managed","server_url":"https://os:9200",` +
		`"username":"u","password":"p","isIgnoreVerifyCert":true,"isIgnoreSsl":false}}`,
	"firebolt": `{"datasourceType":"firebolt","credentials":{"name":"fb","client_id":"id","client_secret":"s","account":"a",` +
		`"database":"d","engineName":"e"}}`,
	"athena": `{"datasourceType":"athena","credentials":{"name":"at","database":"d","outputBucket":"s3://out/","s3AccessKeyId":"AKIA",` +
		`"s3Region":"us-east-1","s3SecretAccessKey":"s"}}`,
	"trino": `{"datasourceType":"trino","credentials":{"name":"tr","host":"h","port":8443,"catalog":"hive","schema":"s",` +
		`"username":"u","password":"p"}}`,
	"csv": `{"datasourceType":"csv","credentials":{"name":"csv","bucketName":"b","datasetPath":"","s3Region":"eu-west-1",` +
		`"tableLevel":"File","s3AccessKeyId":"AKIA","s3SecretAccessKey":"s"}}`,
	"awss3": `{"datasourceType":"awss3","credentials":{"name":"s3","bucketName":"b","s3Region":"us-west-2","s3AccessKeyId":"AKIA",` +
		`"s3SecretAccessKey":"s"}}`,
}

// seedCase is a body of seedBodies with changes, and what seed 002 says of it.
type seedCase struct {
	name, dsType string
	set          map[string]any // changes to the type's seed body (nil: delete; "@tenancySettings": the top-level object)
	refusal      string         // "" accepted; else a part of the fake's 400 message
}

// seedCases are the hand-written bodies: every type's as written, then variations, each accepted
// or refused as the seed's text says.
func seedCases() []seedCase {
	table := map[string]any{"tenancyLevel": "TABLE", "clientColumnType": "NUMBER", "schemaName": "public", "tableName": "clients",
		"tableClientNameColumn": "client_name", "tablePrimaryKeyColumn": "id"}
	without := func(m map[string]any, key string) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if k != key {
				out[k] = v
			}
		}
		return out
	}
	with := func(m map[string]any, key string, v any) map[string]any {
		out := without(m, key)
		out[key] = v
		return out
	}
	return []seedCase{
		// Every type's body as written.
		{"postgres (the seed's example)", "postgres", nil, ""},
		{"redshift", "redshift", nil, ""},
		{"cockroachdb with an SSH tunnel", "cockroachdb", nil, ""},
		{"snowflake with a password", "snowflake", nil, ""},
		{"bigquery", "bigquery", nil, ""},
		{"mysql", "mysql", nil, ""},
		{"mongodb", "mongodb", nil, ""},
		{"clickhouse", "clickhouse", nil, ""},
		{"mssql without its optional database", "mssql", nil, ""},
		{"singlestore", "singlestore", nil, ""},
		{"databricks", "databricks", nil, ""},
		{"elasticsearch on elastic cloud", "elasticsearch", nil, ""},
		{"opensearch self-managed", "opensearch", nil, ""},
		{"firebolt without its optional schema", "firebolt", nil, ""},
		{"athena", "athena", nil, ""},
		{"trino", "trino", nil, ""},
		{"csv with an empty datasetPath", "csv", nil, ""},
		{"awss3", "awss3", nil, ""},

		// Postgres/Redshift group: every printed "required" field, the port, the SSH rule.
		{"postgres without host", "postgres", map[string]any{"host": nil}, "credentials.host is required"},
		{"postgres without port", "postgres", map[string]any{"port": nil}, "credentials.port is required"},
		{"postgres without username", "postgres", map[string]any{"username": nil}, "credentials.username is required"},
		{"postgres without password", "postgres", map[string]any{"password": nil}, "credentials.password is required"},
		{"postgres without database", "postgres", map[string]any{"database": nil}, "credentials.database is required"},
		{"postgres without schema", "postgres", map[string]any{"schema": nil}, "credentials.schema is required"},
		{"postgres with an empty host", "postgres", map[string]any{"host": " "}, "credentials.host must not be empty"},
		{"postgres with user, not username", "postgres", map[string]any{"username": nil, "user": "u"}, "credentials.user is not a field of postgres"},
		{"postgres port as a string", "postgres", map[string]any{"port": "5432"}, "credentials.port must be a number"},
		{"postgres port 0", "postgres", map[string]any{"port": 0}, "between 1 and 65535"},
		{"postgres port 65536", "postgres", map[string]any{"port": 65536}, "between 1 and 65535"},
		{"postgres port 5432.5", "postgres", map[string]any{"port": 5432.5}, "whole number"},
		{"postgres port 65535", "postgres", map[string]any{"port": 65535}, ""},
		{"postgres sslMode as a string", "postgres", map[string]any{"sslMode": "true"}, "credentials.sslMode must be a boolean"},
		{"postgres sshTunnel disable, no SSH fields", "postgres", map[string]any{"sshTunnel": "disable"}, ""},
		{"postgres sshTunnel neither enable nor disable", "postgres", map[string]any{"sshTunnel": "on"}, "credentials.sshTunnel must be"},
		{"postgres sshTunnel empty", "postgres", map[string]any{"sshTunnel": ""}, "credentials.sshTunnel must be"},
		{"postgres sshTunnel enable alone", "postgres", map[string]any{"sshTunnel": "enable"}, "credentials.sshHost is required when sshTunnel"},
		{"cockroachdb SSH without sshHost", "cockroachdb", map[string]any{"sshHost": nil}, "credentials.sshHost is required when sshTunnel"},
		{"cockroachdb SSH without sshPort", "cockroachdb", map[string]any{"sshPort": nil}, "credentials.sshPort is required when sshTunnel"},
		{"cockroachdb SSH without sshUsername", "cockroachdb", map[string]any{"sshUsername": nil}, "credentials.sshUsername is required when sshTunnel"},
		{"cockroachdb SSH without sshPrivateKey", "cockroachdb", map[string]any{"sshPrivateKey": nil}, "credentials.sshPrivateKey is required when sshTunnel"},
		{"cockroachdb sshPort as a string", "cockroachdb", map[string]any{"sshPort": "22"}, "credentials.sshPort must be a number"},
		{"redshift with a warehouse (another group's field)", "redshift", map[string]any{"warehouse": "w"}, "credentials.warehouse is not a field of redshift"},

		// Snowflake: no port, the authentication method decides password vs privateKey.
		{"snowflake key pair", "snowflake", map[string]any{"credentials": "Key-pair authentication", "password": nil, "privateKey": "K", "privateKeyPass": "pp"}, ""},
		{"snowflake key pair without privateKey", "snowflake", map[string]any{"credentials": "Key-pair authentication"}, "credentials.privateKey is required when credentials is \"Key-pair authentication\""},
		{"snowflake password method without password", "snowflake", map[string]any{"password": nil}, "credentials.password is required when credentials is \"username/password\""},
		{"snowflake without an authentication method", "snowflake", map[string]any{"credentials": nil}, "credentials.credentials is required"},
		{"snowflake with another method", "snowflake", map[string]any{"credentials": "oauth"}, "credentials.credentials must be"},
		{"snowflake with a port", "snowflake", map[string]any{"port": 443}, "credentials.port is not a field of snowflake"},
		{"snowflake without role", "snowflake", map[string]any{"role": nil}, "credentials.role is required"},
		{"snowflake without warehouse", "snowflake", map[string]any{"warehouse": nil}, "credentials.warehouse is required"},

		// BigQuery: credentials_json is JSON text, not an object.
		{"bigquery credentials_json as an object", "bigquery", map[string]any{"credentials_json": map[string]any{"type": "service_account"}}, "credentials.credentials_json must be a string"},
		{"bigquery credentials_json not JSON", "bigquery", map[string]any{"credentials_json": "not json"}, "credentials.credentials_json must be a JSON string"},
		{"bigquery without dataset_location", "bigquery", map[string]any{"dataset_location": nil}, "credentials.dataset_location is required"},
		{"bigquery without its optional dataset_id", "bigquery", map[string]any{"dataset_id": nil}, ""},

		// MySQL/MongoDB/ClickHouse: user, not username; no database.
		{"mysql with username, not user", "mysql", map[string]any{"user": nil, "username": "u"}, "credentials.username is not a field of mysql"},
		{"mongodb without user", "mongodb", map[string]any{"user": nil}, "credentials.user is required"},
		{"clickhouse with a database", "clickhouse", map[string]any{"database": "d"}, "credentials.database is not a field of clickhouse"},

		// MSSQL: server, not host; database and isDisableDatabase optional.
		{"mssql with host, not server", "mssql", map[string]any{"server": nil, "host": "h"}, "credentials.host is not a field of mssql"},
		{"mssql with username, not user", "mssql", map[string]any{"user": nil, "username": "u"}, "credentials.username is not a field of mssql"},
		{"mssql with database and isDisableDatabase", "mssql", map[string]any{"database": "d", "isDisableDatabase": true}, ""},
		{"mssql isDisableDatabase as a string", "mssql", map[string]any{"isDisableDatabase": "no"}, "credentials.isDisableDatabase must be a boolean"},

		{"singlestore without database", "singlestore", map[string]any{"database": nil}, "credentials.database is required"},
		{"databricks without token", "databricks", map[string]any{"token": nil}, "credentials.token is required"},
		{"databricks with host", "databricks", map[string]any{"host": "h"}, "credentials.host is not a field of databricks"},

		// Elasticsearch/OpenSearch: server_type decides cloud_id vs server_url; disableAuth.
		{"elasticsearch elastic-cloud without cloud_id", "elasticsearch", map[string]any{"cloud_id": nil}, "credentials.cloud_id is required when server_type is \"elastic-cloud\""},
		{"opensearch open-cloud without cloud_id", "opensearch", map[string]any{"server_type": "open-cloud", "server_url": nil}, "credentials.cloud_id is required when server_type is \"open-cloud\""},
		{"opensearch open-cloud with cloud_id", "opensearch", map[string]any{"server_type": "open-cloud", "server_url": nil, "cloud_id": "c"}, ""},
		{"opensearch self-managed without server_url", "opensearch", map[string]any{"server_url": nil}, "credentials.server_url is required when server_type is \"self-managed\""},
		{"elasticsearch without username", "elasticsearch", map[string]any{"username": nil}, "credentials.username is required unless disableAuth is true"},
		{"elasticsearch disableAuth on elastic cloud", "elasticsearch", map[string]any{"disableAuth": true}, "credentials.disableAuth may be true only when server_type is \"self-managed\""},
		{"opensearch self-managed, disableAuth, no user", "opensearch", map[string]any{"disableAuth": true, "username": nil, "password": nil}, ""},
		{"elasticsearch another server_type", "elasticsearch", map[string]any{"server_type": "cloud"}, "credentials.server_type must be"},

		{"firebolt without engineName", "firebolt", map[string]any{"engineName": nil}, "credentials.engineName is required"},
		{"firebolt without client_secret", "firebolt", map[string]any{"client_secret": nil}, "credentials.client_secret is required"},
		{"athena without outputBucket", "athena", map[string]any{"outputBucket": nil}, "credentials.outputBucket is required"},
		{"athena with its optional datasourceId", "athena", map[string]any{"datasourceId": "ds-1"}, ""},
		{"trino with sslMode", "trino", map[string]any{"sslMode": true}, "credentials.sslMode is not a field of trino"},
		{"trino without catalog", "trino", map[string]any{"catalog": nil}, "credentials.catalog is required"},
		{"trino SSH without sshPrivateKey", "trino", map[string]any{"sshTunnel": "enable", "sshHost": "b", "sshPort": 22, "sshUsername": "t"}, "credentials.sshPrivateKey is required when sshTunnel"},
		{"csv without bucketName", "csv", map[string]any{"bucketName": nil}, "credentials.bucketName is required"},
		{"csv tableLevel in lower case", "csv", map[string]any{"tableLevel": "file"}, "credentials.tableLevel must be"},
		{"csv tableLevel empty", "csv", map[string]any{"tableLevel": ""}, "credentials.tableLevel must be"},
		{"awss3 tableLevel Folder", "awss3", map[string]any{"tableLevel": "Folder", "datasetPath": "raw/"}, ""},

		// Tenancy settings.
		{"tenancy DATABASE", "postgres", map[string]any{"@tenancySettings": map[string]any{"tenancyLevel": "DATABASE"}}, ""},
		{"tenancy TABLE complete", "postgres", map[string]any{"@tenancySettings": table}, ""},
		{"tenancy TABLE without tableName", "postgres", map[string]any{"@tenancySettings": without(table, "tableName")}, "tenancySettings.tableName is required when tenancyLevel is \"TABLE\""},
		{"tenancy TABLE without clientColumnType", "postgres", map[string]any{"@tenancySettings": without(table, "clientColumnType")}, "tenancySettings.clientColumnType is required"},
		{"tenancy clientColumnType TEXT", "postgres", map[string]any{"@tenancySettings": with(table, "clientColumnType", "TEXT")}, "tenancySettings.clientColumnType must be \"NUMBER\" or \"STRING\""},
		{"tenancy DATABASE with a bad clientColumnType", "postgres", map[string]any{"@tenancySettings": map[string]any{"tenancyLevel": "DATABASE", "clientColumnType": "TEXT"}}, "tenancySettings.clientColumnType must be"},
		{"tenancy TABLE with an empty clientColumnType", "postgres", map[string]any{"@tenancySettings": with(table, "clientColumnType", "")}, "tenancySettings.clientColumnType"},
		{"tenancy level in lower case", "postgres", map[string]any{"@tenancySettings": with(table, "tenancyLevel", "table")}, "tenancySettings.tenancyLevel must be"},
		{"tenancy without a level", "postgres", map[string]any{"@tenancySettings": map[string]any{}}, "tenancySettings.tenancyLevel is required"},
		{"tenancy unknown key", "postgres", map[string]any{"@tenancySettings": with(table, "clientTable", "x")}, "tenancySettings.clientTable is not a tenancy setting"},
		{"tenancy value not a string", "postgres", map[string]any{"@tenancySettings": with(table, "tableName", 7)}, "tenancySettings.tableName must be a string"},
	}
}

// TestFakeAnswersTheSeedsBodies: hand-written bodies, each accepted or refused as seed 002 says.
func TestFakeAnswersTheSeedsBodies(t *testing.T) {
	if n := len(databrainfake.DatasourceTypes()); len(seedBodies) != n {
		t.Fatalf("%d hand-written bodies for %d datasource types", len(seedBodies), n)
	}
	for _, tc := range seedCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var base struct {
				Credentials struct{ Name string } `json:"credentials"`
			}
			if err := json.Unmarshal([]byte(seedBodies[tc.dsType]), &base); err != nil {
				t.Fatal(err)
			}
			e.fake.AddDatasource(base.Credentials.Name, tc.dsType)
			body := seedBodies[tc.dsType]
			if tc.set != nil {
				body = bodyWith(t, body, tc.set)
			}
			status, code, msg := raw(t, e, "PUT", "/api/v2/datasource", testToken, "application/json", body)
			switch {
			case tc.refusal == "" && status != 200:
				t.Errorf("refused %d %s %q, want 200 for %s", status, code, msg, body)
			case tc.refusal != "" && (status != 400 || code != "INVALID_REQUEST_BODY" || !strings.Contains(msg, tc.refusal)):
				t.Errorf("%d %s %q, want 400 INVALID_REQUEST_BODY containing %q", status, code, msg, tc.refusal)
			}
			_, stored := e.fake.Credentials(base.Credentials.Name)
			if stored != (tc.refusal == "") {
				t.Errorf("stored = %v after %d", stored, status)
			}
		})
	}
}

// TestAdapterAnswersTheSeedsBodiesLikeTheFake puts the same hand-written bodies through the
// adapter's own validation (validateCredentials, validateTenancy): it must accept and refuse
// exactly what the seed, and so the fake, accepts and refuses. A case where the two readings
// disagree fails here.
func TestAdapterAnswersTheSeedsBodiesLikeTheFake(t *testing.T) {
	for _, tc := range seedCases() {
		t.Run(tc.name, func(t *testing.T) {
			body := seedBodies[tc.dsType]
			if tc.set != nil {
				body = bodyWith(t, body, tc.set)
			}
			dec := json.NewDecoder(strings.NewReader(body))
			dec.UseNumber()
			var req struct {
				DatasourceType  string         `json:"datasourceType"`
				Credentials     map[string]any `json:"credentials"`
				TenancySettings map[string]any `json:"tenancySettings"`
			}
			if err := dec.Decode(&req); err != nil {
				t.Fatal(err)
			}
			ps := validateCredentials(req.DatasourceType, req.Credentials)
			if req.TenancySettings != nil {
				ps = append(ps, validateTenancy(req.TenancySettings)...)
			}
			if accepted := len(ps) == 0; accepted != (tc.refusal == "") {
				t.Errorf("the adapter's table says accepted=%v (%v); seed 002 (the fake): %q", accepted, ps, tc.refusal)
			}
		})
	}
}

// raw sends a request straight to the fake and returns the status with the error code and
// message (for a 200, "" and the datasource name answered).
func raw(t *testing.T, e *env, method, path, token, contentType, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var answer struct {
		Error struct{ Code, Message string } `json:"error"`
		Name  string                         `json:"name"`
	}
	_ = json.Unmarshal(b, &answer)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", answer.Name
	}
	return resp.StatusCode, answer.Error.Code, answer.Error.Message
}
