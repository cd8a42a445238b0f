package databrainfake

import (
	"encoding/json"
	"sort"
	"strings"
)

// The fake's own reading of seed 002 (Databrain's Update Datasource), written from the vendor's
// text and nothing else. It deliberately shares no table, constant or helper with the adapter
// (adapters/databrain: schema.go, config.go, adapter.go), and imports nothing of it: a fake that
// validated with the adapter's table would accept whatever that table says, right or wrong.
//
// Seed 002 lists the per-type field groups without headings; DESIGN.md ("How each vendor is
// driven", Databrain) names the groups of the Create Datasource doc in order: Snowflake ·
// Postgres/Redshift · CockroachDB · BigQuery · MySQL/MongoDB/ClickHouse · MSSQL · SingleStore ·
// Databricks · Elasticsearch/OpenSearch · Firebolt · Athena · Trino · CSV · AWS S3. The seed has
// fourteen groups too, but its search group is printed twice (once for Elasticsearch, once for
// OpenSearch) and its last group ("Name for the CSV datasource", bucketName, ...) is the only S3
// bucket group: no group of its own is printed for AWS S3, which is read here as taking the same
// bucket fields as CSV.

// wireUpdatePath is the endpoint of seed 002: PUT /api/v2/datasource.
const wireUpdatePath = "/api/v2/datasource"

// wireKind is the JSON type the seed gives a field.
type wireKind int

const (
	wireText wireKind = iota // "string"
	wirePort                 // "number", a port: a whole number 1-65535
	wireFlag                 // "boolean"
)

// wireField is one field of a group as the seed prints it.
type wireField struct {
	name  string
	kind  wireKind
	need  bool     // printed "required" (fields "required if ..." are optional here; see wireType.when)
	oneOf []string // the values the seed lists for the field, if it lists them
}

// wireType is what one datasourceType takes in "credentials".
type wireType struct {
	fields []wireField
	// when holds the seed's conditional requirements ("required if ...", "required unless ...",
	// "Only valid when ..."); it returns one message per problem, each naming its field.
	when func(c map[string]any) []string
}

func optText(name string) wireField  { return wireField{name: name, kind: wireText} }
func needText(name string) wireField { return wireField{name: name, kind: wireText, need: true} }
func needPort(name string) wireField { return wireField{name: name, kind: wirePort, need: true} }
func optFlag(name string) wireField  { return wireField{name: name, kind: wireFlag} }
func wireChoice(name string, need bool, values ...string) wireField {
	return wireField{name: name, kind: wireText, need: need, oneOf: values}
}

// Every group starts with credentials.name: "required ... Must include the name field matching the
// existing datasource name" (the CSV group prints it once more, "Name for the CSV datasource").
var wireName = needText("name")

// The SSH tunnel fields, printed in the Postgres/Redshift, CockroachDB and Trino groups:
// sshTunnel "enable" or "disable" (optional); sshHost, sshPort (a number), sshUsername,
// sshPrivateKey "required if sshTunnel is "enable"". The seed calls sshPort "SSH server port": it
// is held to the TCP port range like the database port.
var wireSSH = []wireField{
	wireChoice("sshTunnel", false, "enable", "disable"),
	optText("sshHost"),
	{name: "sshPort", kind: wirePort},
	optText("sshUsername"),
	optText("sshPrivateKey"),
}

func wireSSHRule(c map[string]any) []string {
	if v, _ := c["sshTunnel"].(string); v != "enable" {
		return nil
	}
	return wireNeeded(c, `when sshTunnel is "enable"`, "sshHost", "sshPort", "sshUsername", "sshPrivateKey")
}

// Group 1, Snowflake: host, username, role, warehouse, database, schema, credentials (the
// authentication method) required; password "required if credentials is "username/password"",
// privateKey "required if credentials is "Key-pair authentication"", privateKeyPass optional.
// No port.
var wireSnowflake = wireType{
	fields: []wireField{
		wireName,
		needText("host"),
		needText("username"),
		needText("role"),
		needText("warehouse"),
		needText("database"),
		needText("schema"),
		wireChoice("credentials", true, "username/password", "Key-pair authentication"),
		optText("password"),
		optText("privateKey"),
		optText("privateKeyPass"),
	},
	when: func(c map[string]any) []string {
		switch c["credentials"] {
		case "username/password":
			return wireNeeded(c, `when credentials is "username/password"`, "password")
		case "Key-pair authentication":
			return wireNeeded(c, `when credentials is "Key-pair authentication"`, "privateKey")
		}
		return nil
	},
}

// Groups 2 (Postgres/Redshift) and 3 (CockroachDB) print the same fields: host, port (1-65535),
// username, password, database, schema required; sslMode a boolean (optional); the SSH fields.
var wirePostgres = wireType{
	fields: append([]wireField{
		wireName,
		needText("host"),
		needPort("port"),
		needText("username"),
		needText("password"),
		needText("database"),
		needText("schema"),
		optFlag("sslMode"),
	}, wireSSH...),
	when: wireSSHRule,
}

// Group 4, BigQuery: credentials_json ("JSON string containing Google Cloud service account
// credentials"), project_id, dataset_location required; dataset_id optional.
var wireBigQuery = wireType{
	fields: []wireField{
		wireName,
		needText("credentials_json"),
		needText("project_id"),
		needText("dataset_location"),
		optText("dataset_id"),
	},
	when: func(c map[string]any) []string {
		s, ok := c["credentials_json"].(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil // already refused as missing or not a string
		}
		var sa map[string]any
		if json.Unmarshal([]byte(s), &sa) != nil || sa == nil {
			return []string{"credentials_json must be a JSON string holding the service account's credentials object"}
		}
		return nil
	},
}

// Group 5, MySQL/MongoDB/ClickHouse: host, port, user ("Uses user not username for these
// datasource types"), password, all required. No database, no schema.
var wireMySQL = wireType{fields: []wireField{
	wireName,
	needText("host"),
	needPort("port"),
	needText("user"),
	needText("password"),
}}

// Group 6, MSSQL: server ("Uses server not host for MSSQL"), port, user, password required;
// database and isDisableDatabase (a boolean) optional.
var wireMSSQL = wireType{fields: []wireField{
	wireName,
	needText("server"),
	needPort("port"),
	needText("user"),
	needText("password"),
	optText("database"),
	optFlag("isDisableDatabase"),
}}

// Group 7, SingleStore: host, port, user, password, database, all required.
var wireSingleStore = wireType{fields: []wireField{
	wireName,
	needText("host"),
	needPort("port"),
	needText("user"),
	needText("password"),
	needText("database"),
}}

// Group 8, Databricks: serverHostname, httpPath, token, all required.
var wireDatabricks = wireType{fields: []wireField{
	wireName,
	needText("serverHostname"),
	needText("httpPath"),
	needText("token"),
}}

// Groups 9 and 10, Elasticsearch and OpenSearch (printed twice, identical): server_type
// "elastic-cloud", "open-cloud" or "self-managed" required; cloud_id "required if server_type is
// "elastic-cloud" or "open-cloud""; server_url "required if server_type is "self-managed"";
// username and password "required unless disableAuth is true"; disableAuth a boolean, "Only valid
// when server_type is "self-managed""; isIgnoreVerifyCert and isIgnoreSsl booleans.
var wireSearch = wireType{
	fields: []wireField{
		wireName,
		wireChoice("server_type", true, "elastic-cloud", "open-cloud", "self-managed"),
		optText("cloud_id"),
		optText("server_url"),
		optText("username"),
		optText("password"),
		optFlag("disableAuth"),
		optFlag("isIgnoreVerifyCert"),
		optFlag("isIgnoreSsl"),
	},
	when: func(c map[string]any) []string {
		var out []string
		server, _ := c["server_type"].(string)
		switch server {
		case "elastic-cloud", "open-cloud":
			out = append(out, wireNeeded(c, `when server_type is "`+server+`"`, "cloud_id")...)
		case "self-managed":
			out = append(out, wireNeeded(c, `when server_type is "self-managed"`, "server_url")...)
		}
		noAuth, _ := c["disableAuth"].(bool)
		if noAuth && server != "self-managed" {
			out = append(out, `disableAuth may be true only when server_type is "self-managed"`)
		}
		if !noAuth {
			out = append(out, wireNeeded(c, "unless disableAuth is true", "username", "password")...)
		}
		return out
	},
}

// Group 11, Firebolt: client_id, client_secret, account, database, engineName required; schema
// optional.
var wireFirebolt = wireType{fields: []wireField{
	wireName,
	needText("client_id"),
	needText("client_secret"),
	needText("account"),
	needText("database"),
	needText("engineName"),
	optText("schema"),
}}

// Group 12, Athena: database, outputBucket, s3AccessKeyId, s3Region, s3SecretAccessKey required;
// datasourceId optional.
var wireAthena = wireType{fields: []wireField{
	wireName,
	needText("database"),
	needText("outputBucket"),
	needText("s3AccessKeyId"),
	needText("s3Region"),
	needText("s3SecretAccessKey"),
	optText("datasourceId"),
}}

// Group 13, Trino: host, port, catalog, schema, username, password required; the SSH fields.
// No sslMode, no database.
var wireTrino = wireType{
	fields: append([]wireField{
		wireName,
		needText("host"),
		needPort("port"),
		needText("catalog"),
		needText("schema"),
		needText("username"),
		needText("password"),
	}, wireSSH...),
	when: wireSSHRule,
}

// Group 14, the S3 bucket group: name ("Name for the CSV datasource"), bucketName, s3Region,
// s3AccessKeyId, s3SecretAccessKey required; datasetPath optional ("can be empty string");
// tableLevel "File" or "Folder" (optional).
var wireBucket = wireType{fields: []wireField{
	wireName,
	needText("bucketName"),
	optText("datasetPath"),
	needText("s3Region"),
	wireChoice("tableLevel", false, "File", "Folder"),
	needText("s3AccessKeyId"),
	needText("s3SecretAccessKey"),
}}

// wireTypes maps every datasourceType the Create Datasource doc names to its group.
var wireTypes = map[string]wireType{
	"snowflake":     wireSnowflake,
	"postgres":      wirePostgres,
	"redshift":      wirePostgres,
	"cockroachdb":   wirePostgres,
	"bigquery":      wireBigQuery,
	"mysql":         wireMySQL,
	"mongodb":       wireMySQL,
	"clickhouse":    wireMySQL,
	"mssql":         wireMSSQL,
	"singlestore":   wireSingleStore,
	"databricks":    wireDatabricks,
	"elasticsearch": wireSearch,
	"opensearch":    wireSearch,
	"firebolt":      wireFirebolt,
	"athena":        wireAthena,
	"trino":         wireTrino,
	"csv":           wireBucket,
	"awss3":         wireBucket,
}

// wireTypeNames lists the datasourceTypes the fake knows, sorted.
func wireTypeNames() []string {
	out := make([]string, 0, len(wireTypes))
	for k := range wireTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DatasourceTypes lists the datasourceTypes the fake knows (seed 002's groups), sorted.
func DatasourceTypes() []string { return wireTypeNames() }

// RequiredFields lists the credentials fields seed 002 prints "required" for datasourceType
// ("required if ..." fields are not among them), in the seed's order; nil for an unknown type.
func RequiredFields(datasourceType string) []string {
	var out []string
	for _, f := range wireTypes[datasourceType].fields {
		if f.need {
			out = append(out, f.name)
		}
	}
	return out
}

// wireHas reports whether c holds a usable value at key: present, not null, not a blank string.
func wireHas(c map[string]any, key string) bool {
	v, ok := c[key]
	if !ok || v == nil {
		return false
	}
	if s, isText := v.(string); isText {
		return strings.TrimSpace(s) != ""
	}
	return true
}

func wireNeeded(c map[string]any, why string, keys ...string) []string {
	var out []string
	for _, k := range keys {
		if !wireHas(c, k) {
			out = append(out, k+" is required "+why)
		}
	}
	return out
}

// checkCredentials is the fake's check of a decoded (UseNumber) "credentials" object for
// dsType, as Databrain answers INVALID_REQUEST_BODY for "Missing required fields or invalid
// credential structure". Each message names its field inside "credentials" and no value.
func checkCredentials(dsType string, c map[string]any) []string {
	wt, ok := wireTypes[dsType]
	if !ok {
		return []string{"datasourceType must be one of " + strings.Join(wireTypeNames(), ", ")}
	}
	byName := make(map[string]wireField, len(wt.fields))
	for _, f := range wt.fields {
		byName[f.name] = f
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		f, known := byName[k]
		if !known {
			out = append(out, k+" is not a field of "+dsType+" datasources")
			continue
		}
		if msg := checkWireValue(f, c[k]); msg != "" {
			out = append(out, k+" "+msg)
		}
	}
	for _, f := range wt.fields {
		if _, present := c[f.name]; f.need && !present {
			out = append(out, f.name+" is required for "+dsType+" datasources")
		}
	}
	if wt.when != nil {
		out = append(out, wt.when(c)...)
	}
	return out
}

// checkWireValue checks one present value; "" when it is fine.
func checkWireValue(f wireField, v any) string {
	switch f.kind {
	case wirePort:
		n, ok := v.(json.Number)
		if !ok {
			return "must be a number (1-65535)"
		}
		i, err := n.Int64()
		if err != nil || i < 1 || i > 65535 {
			return "must be a whole number between 1 and 65535"
		}
	case wireFlag:
		if _, ok := v.(bool); !ok {
			return "must be a boolean"
		}
	default:
		s, ok := v.(string)
		if !ok {
			return "must be a string"
		}
		if f.need && strings.TrimSpace(s) == "" {
			return "must not be empty"
		}
		if len(f.oneOf) > 0 {
			for _, allowed := range f.oneOf {
				if s == allowed {
					return ""
				}
			}
			return `must be "` + strings.Join(f.oneOf, `" or "`) + `"`
		}
	}
	return ""
}

// The tenancy settings of seed 002: tenancyLevel "Must be one of: TABLE or DATABASE", "Required
// when tenancySettings is provided"; clientColumnType "Must be either NUMBER or STRING"; it and
// schemaName, tableName, tableClientNameColumn, tablePrimaryKeyColumn "Required when tenancyLevel
// is TABLE". All strings.
var wireTenancyKeys = []string{"tenancyLevel", "clientColumnType", "schemaName", "tableName", "tableClientNameColumn", "tablePrimaryKeyColumn"}

// checkTenancy checks a decoded tenancySettings object. Each message names its field as
// "tenancySettings.<key>".
func checkTenancy(t map[string]any) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		known := false
		for _, w := range wireTenancyKeys {
			known = known || w == k
		}
		switch _, isText := t[k].(string); {
		case !known:
			out = append(out, "tenancySettings."+k+" is not a tenancy setting ("+strings.Join(wireTenancyKeys, ", ")+")")
		case !isText:
			out = append(out, "tenancySettings."+k+" must be a string")
		}
	}
	if len(out) > 0 {
		return out
	}
	if v, ok := t["clientColumnType"]; ok && v != "NUMBER" && v != "STRING" {
		out = append(out, `tenancySettings.clientColumnType must be "NUMBER" or "STRING"`)
	}
	switch t["tenancyLevel"] {
	case "TABLE":
		for _, k := range wireTenancyKeys[1:] {
			if !wireHas(t, k) {
				out = append(out, "tenancySettings."+k+` is required when tenancyLevel is "TABLE"`)
			}
		}
	case "DATABASE":
	case nil, "":
		out = append(out, "tenancySettings.tenancyLevel is required when tenancySettings is given")
	default:
		out = append(out, `tenancySettings.tenancyLevel must be "TABLE" or "DATABASE"`)
	}
	return out
}
