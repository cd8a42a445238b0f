package databrain

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/golden"
)

// goldenCase is one credential type × datasource type (× mode).
type goldenCase struct {
	file   string // testdata/databrain/<file>.golden
	target string // the target block
	cred   string // the credential JSON
	// stored: fields the fake must now hold with these exact (clear) values.
	stored map[string]string
	absent []string // fields that must not be sent
}

var goldenCases = []goldenCase{
	{
		file: "snowflake_password",
		target: `datasource_type: snowflake
name: sf-analytics
fields: {host: acme-xy12345.snowflakecomputing.com, username: CREDSYNC_SVC, role: ANALYST, warehouse: COMPUTE_WH, database: ANALYTICS, schema: PUBLIC}`,
		cred:   credPassword,
		stored: map[string]string{"credentials": "username/password", "password": pw1, "username": "CREDSYNC_SVC"},
		absent: []string{"privateKey", "privateKeyPass"},
	},
	{
		file: "snowflake_key_pair",
		target: `datasource_type: snowflake
name: sf-analytics
fields: {host: acme-xy12345.snowflakecomputing.com, username: CREDSYNC_SVC, role: ANALYST, warehouse: COMPUTE_WH, database: ANALYTICS, schema: PUBLIC}`,
		cred:   credKeyPair,
		stored: map[string]string{"credentials": "Key-pair authentication", "privateKey": privKey1, "privateKeyPass": privKeyPass1, "username": "SVC_CREDSYNC"},
		absent: []string{"password"},
	},
	{
		file: "postgres_password",
		target: `datasource_type: postgres
name: production-postgres
fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "username": "dbuser", "host": "db.internal"},
		absent: []string{"sshPrivateKey", "tenancySettings"},
	},
	{
		file: "postgres_password_ssh",
		target: `datasource_type: postgres
name: production-postgres
fields:
  host: 10.0.3.17
  port: 5432
  username: dbuser
  database: analytics
  schema: public
  sslMode: true
  sshTunnel: enable
  sshHost: bastion.example.com
  sshPort: 22
  sshUsername: tunnel`,
		cred:   credPasswordSSH,
		stored: map[string]string{"password": pw1, "sshPrivateKey": sshKey1, "sshTunnel": "enable"},
	},
	{
		file: "postgres_password_tenancy",
		target: `datasource_type: postgres
name: production-postgres
fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}
tenancy_settings:
  tenancyLevel: TABLE
  clientColumnType: STRING
  schemaName: public
  tableName: clients
  tableClientNameColumn: client_name
  tablePrimaryKeyColumn: id`,
		cred:   credPasswordUser,
		stored: map[string]string{"password": pw1, "username": "dbuser_rotated"},
	},
	{
		file: "redshift_password",
		target: `datasource_type: redshift
name: rs-warehouse
fields: {host: rs.abc123.us-east-1.redshift.amazonaws.com, port: 5439, username: rsuser, database: dev, schema: public, sslMode: true}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1},
	},
	{
		file: "cockroachdb_password",
		target: `datasource_type: cockroachdb
name: crdb-main
fields: {host: crdb.internal, port: 26257, username: crdbuser, database: defaultdb, schema: public, sshTunnel: disable}`,
		cred:   credPasswordSSH, // ssh_tunnel is for other targets: this one does not tunnel
		stored: map[string]string{"password": pw1},
		absent: []string{"sshPrivateKey"},
	},
	{
		file: "trino_password",
		target: `datasource_type: trino
name: trino-lake
fields: {host: trino.internal, port: 8443, catalog: hive, schema: sales, username: trino_user}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "catalog": "hive"},
	},
	{
		file: "trino_password_ssh",
		target: `datasource_type: trino
name: trino-lake
fields: {host: trino.internal, port: 8443, catalog: hive, schema: sales, username: trino_user, sshTunnel: enable, sshHost: bastion.example.com, sshPort: 2222, sshUsername: tunnel}`,
		cred:   credPasswordSSH,
		stored: map[string]string{"password": pw1, "sshPrivateKey": sshKey1},
	},
	{
		file: "mysql_password",
		target: `datasource_type: mysql
name: shop-mysql
fields: {host: mysql.internal, port: 3306, user: shop}`,
		cred:   credPasswordUser,
		stored: map[string]string{"password": pw1, "user": "dbuser_rotated"},
		absent: []string{"username"},
	},
	{
		file: "mongodb_password",
		target: `datasource_type: mongodb
name: events-mongo
fields: {host: mongo.internal, port: 27017, user: events}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "user": "events"},
	},
	{
		file: "clickhouse_password",
		target: `datasource_type: clickhouse
name: metrics-ch
fields: {host: ch.internal, port: 8443, user: default}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "user": "default"},
	},
	{
		file: "singlestore_password",
		target: `datasource_type: singlestore
name: s2-main
fields: {host: svc-1234.svc.singlestore.com, port: 3306, user: admin, database: app}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "database": "app"},
	},
	{
		file: "mssql_password",
		target: `datasource_type: mssql
name: erp-mssql
fields: {server: sql.internal, port: 1433, user: sa_reporting, database: erp, isDisableDatabase: false}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "server": "sql.internal", "user": "sa_reporting"},
		absent: []string{"host"},
	},
	{
		file: "bigquery_gcp_service_account",
		target: `datasource_type: bigquery
name: bq-marketing
fields: {project_id: demo-proj, dataset_location: US, dataset_id: marketing}`,
		cred:   credGCP,
		stored: map[string]string{"project_id": "demo-proj"},
	},
	{
		file: "databricks_token",
		target: `datasource_type: databricks
name: dbx-lakehouse
fields: {serverHostname: adb-1234567890123456.7.azuredatabricks.net, httpPath: /sql/1.0/warehouses/abc123}`,
		cred:   credToken,
		stored: map[string]string{"token": token1},
	},
	{
		file: "elasticsearch_password",
		target: `datasource_type: elasticsearch
name: logs-es
fields: {server_type: elastic-cloud, cloud_id: "logs:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyQ=", username: elastic}`,
		cred:   credPassword,
		stored: map[string]string{"password": pw1, "username": "elastic"},
	},
	{
		file: "opensearch_password",
		target: `datasource_type: opensearch
name: search-os
fields: {server_type: self-managed, server_url: "https://opensearch.internal:9200", username: admin, disableAuth: false, isIgnoreVerifyCert: true}`,
		cred:   credPasswordUser,
		stored: map[string]string{"password": pw1, "username": "dbuser_rotated", "server_url": "https://opensearch.internal:9200"},
	},
	{
		file: "firebolt_oauth_client",
		target: `datasource_type: firebolt
name: fb-analytics
fields: {account: acme, database: analytics, engineName: analytics_engine, schema: public}`,
		cred:   credOAuth,
		stored: map[string]string{"client_id": "fb-client-id-1", "client_secret": clientSec1},
	},
	{
		file: "athena_aws_access_key",
		target: `datasource_type: athena
name: athena-lake
fields: {database: lake, outputBucket: "s3://acme-athena-results/", s3Region: us-east-1}`,
		cred:   credAWS,
		stored: map[string]string{"s3AccessKeyId": "AKIAFAKEEXAMPLE0001", "s3SecretAccessKey": awsSecret1},
	},
	{
		file: "csv_aws_access_key",
		target: `datasource_type: csv
name: csv-exports
fields: {bucketName: acme-exports, datasetPath: "", s3Region: eu-west-1, tableLevel: File}`,
		cred:   credAWS,
		stored: map[string]string{"s3AccessKeyId": "AKIAFAKEEXAMPLE0001", "s3SecretAccessKey": awsSecret1, "datasetPath": ""},
	},
	{
		file: "awss3_aws_access_key",
		target: `datasource_type: awss3
name: s3-datalake
fields: {bucketName: acme-datalake, datasetPath: raw/events, s3Region: us-west-2, tableLevel: Folder}`,
		cred:   credAWS,
		stored: map[string]string{"s3AccessKeyId": "AKIAFAKEEXAMPLE0001", "s3SecretAccessKey": awsSecret1},
	},
}

// TestGolden sends every case to the fake and compares the recorded request with its golden file.
func TestGolden(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t)
			a := e.target(t, tc.target)
			covered[a.dsType] = true
			e.fake.AddDatasource(a.name, a.dsType)
			req, err := a.Build(cred(t, tc.cred))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			dry, _ := json.Marshal(req)
			assertNoSecret(t, "dry run", string(dry))
			if !strings.Contains(string(dry), `"[REDACTED]"`) {
				t.Errorf("dry run shows no redacted secret: %s", dry)
			}
			if retry, err := send(t, a, req); err != nil || retry {
				t.Fatalf("Send: retry=%v err=%v", retry, err)
			}
			reqs := e.fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("fake got %d requests, want 1", len(reqs))
			}
			golden.Assert(t, "databrain/"+tc.file+".golden", golden.Format(reqs[0]))

			stored, ok := e.fake.Credentials(a.name)
			if !ok {
				t.Fatal("fake holds no credentials after a 200")
			}
			if stored["name"] != a.name {
				t.Errorf("stored name = %v, want %q", stored["name"], a.name)
			}
			for k, want := range tc.stored {
				if got, ok := stored[k].(string); !ok || got != want {
					t.Errorf("stored %s = %#v, want %q", k, stored[k], want)
				}
			}
			for _, k := range tc.absent {
				if _, ok := stored[k]; ok {
					t.Errorf("%s was sent, want it absent", k)
				}
			}
			_, hasTenancy := e.fake.TenancySettings(a.name)
			if hasTenancy != (a.tenancy != nil) {
				t.Errorf("tenancy stored = %v, configured = %v", hasTenancy, a.tenancy != nil)
			}
		})
	}
	for _, typ := range typeNames() {
		if !covered[typ] {
			t.Errorf("no golden case for datasourceType %s", typ)
		}
	}
}

// TestGoldenBigQueryJSONString checks that credentials_json goes out as a JSON string holding the
// service account object, not as a nested object.
func TestGoldenBigQueryJSONString(t *testing.T) {
	e := newEnv(t)
	a := e.target(t, "datasource_type: bigquery\nname: bq\nfields: {project_id: p, dataset_location: EU}")
	e.fake.AddDatasource("bq", "bigquery")
	req, err := a.Build(cred(t, credGCP))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, a, req); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.fake.Credentials("bq")
	s, ok := stored["credentials_json"].(string)
	if !ok {
		t.Fatalf("credentials_json = %T, want a string", stored["credentials_json"])
	}
	var sa map[string]any
	if err := json.Unmarshal([]byte(s), &sa); err != nil {
		t.Fatalf("credentials_json is not JSON text: %v", err)
	}
	if sa["private_key"] != saKey1 || sa["type"] != "service_account" {
		t.Errorf("service account document not carried: %v", sa["type"])
	}
}
