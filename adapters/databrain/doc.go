// Package databrain pushes rotated credentials to Databrain datasources.
//
// # Wire format
//
// One call per rotation and target: PUT /api/v2/datasource (Databrain's Update Datasource, seed
// 002) with the service token as bearer and the body
//
//	{"datasourceType": T, "credentials": {"name": <name>, ...fields..., ...secret...}, "tenancySettings"?: {...}}
//
// It is a full replacement keyed by credentials.name ("Partial updates are not supported"), so the
// target config holds every non-secret field of the datasource and Build merges the rotated secret
// into them, then validates the complete structure for T (required fields, port 1-65535, value
// types, Snowflake's password vs privateKey, the SSH fields when sshTunnel is "enable",
// Elasticsearch/OpenSearch server_type rules) before anything is sent. The same per-type table
// (schema.go) drives config-load validation of the non-secret part. The fake server (package
// databrainfake) does not use it: it checks bodies with its own reading of seed 002.
//
// # Target config
//
//	targets:
//	  - platform: databrain
//	    datasource_type: postgres          # required; see "Credential mapping" below
//	    name: production-postgres          # required; the existing datasource's name (credentials.name)
//	    fields: {host: db.internal, port: 5432, username: dbuser, database: analytics, schema: public}
//	    tenancy_settings:                  # optional, sent as tenancySettings
//	      tenancyLevel: TABLE              # TABLE | DATABASE
//	      clientColumnType: STRING         # TABLE only: NUMBER | STRING, and the four below
//	      schemaName: public
//	      tableName: clients
//	      tableClientNameColumn: client_name
//	      tablePrimaryKeyColumn: id
//
// For databrain targets the config package removes only "platform" from the node: "name" is both
// the target's name and the Databrain datasource name. `fields` uses Databrain's own field names
// (user vs username, server vs host, sslMode...), takes only the non-secret fields of the type,
// and refuses secrets (password, privateKey, privateKeyPass, token, client_secret,
// s3SecretAccessKey, credentials_json, sshPrivateKey) and the fields the credential decides
// (Snowflake's credentials, Firebolt's client_id, the S3 s3AccessKeyId): those come from the
// rotated credential. Ports must be numbers and booleans booleans, as Databrain wants them.
// `verify` may be omitted or true; `verify: false` is refused because Databrain always tests the
// connection during the update and that cannot be turned off.
//
// # Credential mapping
//
//   - snowflake: password → credentials "username/password" + password; key_pair → credentials
//     "Key-pair authentication" + privateKey (+ privateKeyPass when the passphrase is set). Both
//     set username from credential.username when given (private_key_name is not used).
//   - postgres, redshift, cockroachdb, trino: password → password (+ username).
//   - mysql, mongodb, clickhouse, singlestore, mssql: password → password (+ user).
//   - elasticsearch, opensearch: password → password (+ username); disableAuth: true is refused
//     at load (nothing to rotate).
//   - bigquery: gcp_service_account → credentials_json, the service account JSON text as a JSON
//     string (not an object).
//   - databricks: token → token.
//   - firebolt: oauth_client → client_id, client_secret.
//   - athena, csv, awss3: aws_access_key → s3AccessKeyId, s3SecretAccessKey.
//
// The user name (username or user) comes from fields and is overridden by credential.username
// when the rotation renames the user; if neither has it, Build refuses the credential.
// ssh_tunnel on the credential becomes sshPrivateKey only for the types with SSH fields
// (postgres, redshift, cockroachdb, trino) whose fields say sshTunnel: enable; there it is
// required (the replacement would otherwise drop the key) and a passphrase is refused (Databrain
// has no field for one). For every other target it is left out: it is meant for other platforms
// of the same source.
//
// # Field groups of seed 002
//
// Seed 002 lists the per-type field groups without headings. Following the order DESIGN.md
// gives for the Create Datasource doc, and the fields themselves:
//
//  1. host/username/role/warehouse/database/schema/credentials/password/privateKey: snowflake.
//  2. host/port/username/password/database/schema/sslMode + SSH fields: postgres and redshift.
//  3. the same fields, described as "CockroachDB hostname": cockroachdb.
//  4. credentials_json/project_id/dataset_location/dataset_id: bigquery.
//  5. host/port/user/password ("Uses user not username for these datasource types"): mysql,
//     mongodb, clickhouse.
//  6. server/port/user/password/database?/isDisableDatabase ("Uses server not host"): mssql.
//  7. host/port/user/password/database: singlestore.
//  8. serverHostname/httpPath/token: databricks.
//  9. and 10. server_type/cloud_id/server_url/username/password/disableAuth/...: the seed lists
//     this group twice where DESIGN.md names one "Elasticsearch/OpenSearch" group; the first is
//     taken as elasticsearch, the second as opensearch (identical fields either way).
//  11. client_id/client_secret/account/database/engineName/schema?: firebolt.
//  12. database/outputBucket/s3AccessKeyId/s3Region/s3SecretAccessKey/datasourceId?: athena.
//  13. host/port/catalog/schema/username/password + SSH fields: trino.
//  14. name/bucketName/datasetPath?/s3Region/tableLevel?/s3AccessKeyId/s3SecretAccessKey: its
//     name field reads "Name for the CSV datasource", so it is csv. DESIGN.md names a further
//     "AWS S3" group after CSV, but seed 002 has none (the duplicated search group takes its
//     place in the count). An S3 datasource is an S3 bucket with the same fields, so awss3 uses
//     this group too. That is an assumption to check against Databrain's Create Datasource doc.
//
// # Answers and errors
//
// Databrain validates the body, tests the connection with the new credential and re-caches the
// schema before it answers 200 {"name": ...}. So a 200 means updated and verified: Verify answers
// Verified true without calling Databrain.
//
// The doc names the error codes but not the error body. credsync assumes
// {"error": {"code": "INVALID_REQUEST_BODY", "message": "..."}} (and also reads {"error": "..."}
// and a top-level {"code", "message"}), and reports "<CODE>: <message>". Classification:
// INVALID_REQUEST_BODY (rejected), DATASOURCE_NAME_ERROR and DATASOURCE_NOT_FOUND (not_found),
// CREDENTIAL_TEST_FAILED (verification_failed) and AUTHENTICATION_ERROR (unauthorized) are final;
// SCHEMA_CACHE_FAILED, TENANCY_SETTINGS_CREATE_FAILED, TENANCY_SETTINGS_UPDATE_FAILED and
// INTERNAL_SERVER_ERROR (vendor_error) are retried: the PUT is a full replacement, so sending it
// again is safe. Other statuses follow vendorhttp.Classify (429 and 5xx retried with Retry-After).
//
// # Fake
//
// Package databrainfake (databrainfake.New) serves the same endpoint from memory. It validates
// with its own table, written from seed 002 independently of the adapter's, and imports nothing
// of this package (a test in package adapters keeps it so): a wrong entry in the adapter's table
// then makes the fake refuse the adapter's request instead of passing both (readings_test.go
// checks both ways). An unknown
// datasource name answers 404 DATASOURCE_NOT_FOUND: the doc lists both that and
// DATASOURCE_NAME_ERROR (400, "Datasource not found"); the 404 one is the one whose status says
// "not found", and the adapter treats both alike. A datasourceType different from the stored
// datasource's answers 400 INVALID_REQUEST_BODY ("Must match the existing datasource type").
package databrain
