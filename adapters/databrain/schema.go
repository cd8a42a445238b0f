package databrain

import (
	"encoding/json"
	"math"
	"sort"
	"strings"

	"github.com/credsync/credsync/core"
)

// This file is the adapter's table of what Databrain's PUT /api/v2/datasource accepts in
// "credentials" for each datasourceType (seed 002, the field groups mapped to types as doc.go
// explains). The adapter validates the merged body against it before sending, and the config
// loader validates the non-secret part against it at load time. The fake server does not use it:
// it has its own reading of seed 002 (package databrainfake), so that a wrong entry here makes
// the fake refuse the adapter's request (TestFakeRefusesAWrongAdapterTable) instead of passing
// both.

// valueKind is the JSON type a credentials field must have.
type valueKind int

const (
	kindString valueKind = iota // a JSON string
	kindPort                    // a JSON number, an integer in 1..65535
	kindBool                    // a JSON boolean
)

func (k valueKind) String() string {
	switch k {
	case kindPort:
		return "a number (1-65535)"
	case kindBool:
		return "a boolean"
	default:
		return "a string"
	}
}

// origin says where credsync takes a field's value from.
type origin int

const (
	fromConfig     origin = iota // the target's `fields` mapping
	fromName                     // the target's `name` key (credentials.name)
	fromCredential               // always the rotated credential (secrets and what the credential type decides)
	fromEither                   // the user name: `fields`, overridden by credential.username when it is set
)

// fieldSpec is one field of a datasource type's "credentials" object.
type fieldSpec struct {
	name     string
	kind     valueKind
	required bool     // required whatever the other fields say (conditional rules live in typeSpec.rules)
	enum     []string // allowed values of a string field, if restricted
	origin   origin
	secret   bool   // a secret: never in the config file, never echoed
	credPath string // fromCredential / fromEither: the neutral credential field that fills it
}

// typeSpec is one datasourceType.
type typeSpec struct {
	group   string // which field group of seed 002 this type uses
	fields  []fieldSpec
	accepts []core.CredentialType
	userKey string // the user name field ("username", "user"), "" if the type has none
	ssh     bool   // has the sshTunnel/sshHost/sshPort/sshUsername/sshPrivateKey fields
	rules   func(c map[string]any) []problem
}

func (t *typeSpec) field(name string) (fieldSpec, bool) {
	for _, f := range t.fields {
		if f.name == name {
			return f, true
		}
	}
	return fieldSpec{}, false
}

// configFields lists the keys an operator may write in `fields` for this type.
func (t *typeSpec) configFields() []string {
	var out []string
	for _, f := range t.fields {
		if f.origin == fromConfig || f.origin == fromEither {
			out = append(out, f.name)
		}
	}
	return out
}

// problem is one thing wrong with a credentials/tenancySettings structure. field is the key inside
// "credentials" ("host"), or "datasourceType", or "tenancySettings.<key>". msg never holds a value.
type problem struct {
	field string
	msg   string
}

// Field spec helpers, to keep the table readable.
func cfgStr(name string, required bool) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: required, origin: fromConfig}
}
func cfgEnum(name string, required bool, values ...string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: required, origin: fromConfig, enum: values}
}
func cfgPort(name string, required bool) fieldSpec {
	return fieldSpec{name: name, kind: kindPort, required: required, origin: fromConfig}
}
func cfgBool(name string) fieldSpec {
	return fieldSpec{name: name, kind: kindBool, origin: fromConfig}
}
func userField(name string, required bool) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: required, origin: fromEither, credPath: "credential.username"}
}
func secretField(name string, required bool, credPath string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: required, origin: fromCredential, secret: true, credPath: credPath}
}
func credField(name, credPath string) fieldSpec {
	return fieldSpec{name: name, kind: kindString, required: true, origin: fromCredential, credPath: credPath}
}

// Snowflake's authentication methods (credentials.credentials).
const (
	snowflakePassword = "username/password"
	snowflakeKeyPair  = "Key-pair authentication"
)

// Elasticsearch/OpenSearch server types.
const (
	serverElasticCloud = "elastic-cloud"
	serverOpenCloud    = "open-cloud"
	serverSelfManaged  = "self-managed"
)

var nameField = fieldSpec{name: "name", kind: kindString, required: true, origin: fromName}

func sshFields() []fieldSpec {
	return []fieldSpec{
		cfgEnum("sshTunnel", false, "enable", "disable"),
		cfgStr("sshHost", false),
		cfgPort("sshPort", false),
		cfgStr("sshUsername", false),
		secretField("sshPrivateKey", false, "credential.ssh_tunnel.private_key"),
	}
}

func concat(groups ...[]fieldSpec) []fieldSpec {
	var out []fieldSpec
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// Field groups of seed 002, in the order the doc lists them.
var (
	// Group 1: Snowflake.
	snowflakeGroup = []fieldSpec{
		nameField,
		cfgStr("host", true),
		userField("username", true),
		cfgStr("role", true),
		cfgStr("warehouse", true),
		cfgStr("database", true),
		cfgStr("schema", true),
		{name: "credentials", kind: kindString, required: true, origin: fromCredential, enum: []string{snowflakePassword, snowflakeKeyPair}, credPath: "credential.type"},
		secretField("password", false, "credential.password"),
		secretField("privateKey", false, "credential.private_key"),
		secretField("privateKeyPass", false, "credential.private_key_passphrase"),
	}
	// Groups 2 (Postgres/Redshift) and 3 (CockroachDB): the same fields.
	postgresGroup = concat([]fieldSpec{
		nameField,
		cfgStr("host", true),
		cfgPort("port", true),
		userField("username", true),
		secretField("password", true, "credential.password"),
		cfgStr("database", true),
		cfgStr("schema", true),
		cfgBool("sslMode"),
	}, sshFields())
	// Group 4: BigQuery.
	bigqueryGroup = []fieldSpec{
		nameField,
		secretField("credentials_json", true, "credential.service_account_json"),
		cfgStr("project_id", true),
		cfgStr("dataset_location", true),
		cfgStr("dataset_id", false),
	}
	// Group 5: MySQL/MongoDB/ClickHouse ("Uses user not username for these datasource types").
	mysqlGroup = []fieldSpec{
		nameField,
		cfgStr("host", true),
		cfgPort("port", true),
		userField("user", true),
		secretField("password", true, "credential.password"),
	}
	// Group 6: MSSQL (server, user).
	mssqlGroup = []fieldSpec{
		nameField,
		cfgStr("server", true),
		cfgPort("port", true),
		userField("user", true),
		secretField("password", true, "credential.password"),
		cfgStr("database", false),
		cfgBool("isDisableDatabase"),
	}
	// Group 7: SingleStore (host/port/user/password/database).
	singlestoreGroup = []fieldSpec{
		nameField,
		cfgStr("host", true),
		cfgPort("port", true),
		userField("user", true),
		secretField("password", true, "credential.password"),
		cfgStr("database", true),
	}
	// Group 8: Databricks.
	databricksGroup = []fieldSpec{
		nameField,
		cfgStr("serverHostname", true),
		cfgStr("httpPath", true),
		secretField("token", true, "credential.token"),
	}
	// Groups 9 (Elasticsearch) and 10 (OpenSearch): the same fields.
	searchGroup = []fieldSpec{
		nameField,
		cfgEnum("server_type", true, serverElasticCloud, serverOpenCloud, serverSelfManaged),
		cfgStr("cloud_id", false),
		cfgStr("server_url", false),
		userField("username", false),
		secretField("password", false, "credential.password"),
		cfgBool("disableAuth"),
		cfgBool("isIgnoreVerifyCert"),
		cfgBool("isIgnoreSsl"),
	}
	// Group 11: Firebolt.
	fireboltGroup = []fieldSpec{
		nameField,
		credField("client_id", "credential.client_id"),
		secretField("client_secret", true, "credential.client_secret"),
		cfgStr("account", true),
		cfgStr("database", true),
		cfgStr("engineName", true),
		cfgStr("schema", false),
	}
	// Group 12: Athena.
	athenaGroup = []fieldSpec{
		nameField,
		cfgStr("database", true),
		cfgStr("outputBucket", true),
		credField("s3AccessKeyId", "credential.access_key_id"),
		cfgStr("s3Region", true),
		secretField("s3SecretAccessKey", true, "credential.secret_access_key"),
		cfgStr("datasourceId", false),
	}
	// Group 13: Trino.
	trinoGroup = concat([]fieldSpec{
		nameField,
		cfgStr("host", true),
		cfgPort("port", true),
		cfgStr("catalog", true),
		cfgStr("schema", true),
		userField("username", true),
		secretField("password", true, "credential.password"),
	}, sshFields())
	// Group 14: the S3 bucket group ("Name for the CSV datasource", bucketName, datasetPath,
	// s3Region, tableLevel, S3 keys): CSV, and AWS S3, which seed 002 gives no group of its own.
	bucketGroup = []fieldSpec{
		nameField,
		cfgStr("bucketName", true),
		cfgStr("datasetPath", false),
		cfgStr("s3Region", true),
		cfgEnum("tableLevel", false, "File", "Folder"),
		credField("s3AccessKeyId", "credential.access_key_id"),
		secretField("s3SecretAccessKey", true, "credential.secret_access_key"),
	}
)

var (
	acceptPassword = []core.CredentialType{core.TypePassword}
	acceptAWS      = []core.CredentialType{core.TypeAWSAccessKey}
)

// types is every datasourceType credsync can update, keyed by Databrain's name for it.
var types = map[string]*typeSpec{
	"snowflake": {group: "1 (Snowflake)", fields: snowflakeGroup, userKey: "username",
		accepts: []core.CredentialType{core.TypePassword, core.TypeKeyPair}, rules: snowflakeRules},
	"postgres":    {group: "2 (Postgres/Redshift)", fields: postgresGroup, userKey: "username", ssh: true, accepts: acceptPassword, rules: sshRules},
	"redshift":    {group: "2 (Postgres/Redshift)", fields: postgresGroup, userKey: "username", ssh: true, accepts: acceptPassword, rules: sshRules},
	"cockroachdb": {group: "3 (CockroachDB)", fields: postgresGroup, userKey: "username", ssh: true, accepts: acceptPassword, rules: sshRules},
	"bigquery":    {group: "4 (BigQuery)", fields: bigqueryGroup, accepts: []core.CredentialType{core.TypeGCPServiceAccount}, rules: bigqueryRules},
	"mysql":       {group: "5 (MySQL/MongoDB/ClickHouse)", fields: mysqlGroup, userKey: "user", accepts: acceptPassword},
	"mongodb":     {group: "5 (MySQL/MongoDB/ClickHouse)", fields: mysqlGroup, userKey: "user", accepts: acceptPassword},
	"clickhouse":  {group: "5 (MySQL/MongoDB/ClickHouse)", fields: mysqlGroup, userKey: "user", accepts: acceptPassword},
	"mssql":       {group: "6 (MSSQL)", fields: mssqlGroup, userKey: "user", accepts: acceptPassword},
	"singlestore": {group: "7 (SingleStore)", fields: singlestoreGroup, userKey: "user", accepts: acceptPassword},
	"databricks":  {group: "8 (Databricks)", fields: databricksGroup, accepts: []core.CredentialType{core.TypeToken}},
	"elasticsearch": {group: "9 (Elasticsearch)", fields: searchGroup, userKey: "username",
		accepts: acceptPassword, rules: searchRules},
	"opensearch": {group: "10 (OpenSearch)", fields: searchGroup, userKey: "username",
		accepts: acceptPassword, rules: searchRules},
	"firebolt": {group: "11 (Firebolt)", fields: fireboltGroup, accepts: []core.CredentialType{core.TypeOAuthClient}},
	"athena":   {group: "12 (Athena)", fields: athenaGroup, accepts: acceptAWS},
	"trino":    {group: "13 (Trino)", fields: trinoGroup, userKey: "username", ssh: true, accepts: acceptPassword, rules: sshRules},
	"csv":      {group: "14 (CSV: S3 bucket)", fields: bucketGroup, accepts: acceptAWS},
	"awss3":    {group: "14 (S3 bucket; no group of its own in seed 002)", fields: bucketGroup, accepts: acceptAWS},
}

// typeNames lists the supported datasourceType values, sorted.
func typeNames() []string {
	out := make([]string, 0, len(types))
	for k := range types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Value helpers. A "credentials" map holds strings, core.Secret, int (from config), json.Number
// or float64 (decoded JSON) and bool.

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case core.Secret:
		return x.Reveal(), true
	}
	return "", false
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return int64(x), true
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
	}
	return 0, false
}

func asBool(v any) (value, ok bool) {
	b, ok := v.(bool)
	return b, ok
}

// filled reports whether c[key] holds a non-empty value.
func filled(c map[string]any, key string) bool {
	v, ok := c[key]
	if !ok || v == nil {
		return false
	}
	if s, isStr := asString(v); isStr {
		return strings.TrimSpace(s) != ""
	}
	return true
}

// str returns c[key] as a string, "" if absent or not a string.
func str(c map[string]any, key string) string {
	s, _ := asString(c[key])
	return s
}

func requireAll(c map[string]any, why string, keys ...string) []problem {
	var ps []problem
	for _, k := range keys {
		if !filled(c, k) {
			ps = append(ps, problem{k, "is required " + why})
		}
	}
	return ps
}

// validateCredentials checks a complete "credentials" object for dsType: no unknown field, every
// value of the right JSON type and range, every required field present (unconditional and
// conditional). It never echoes a value.
func validateCredentials(dsType string, c map[string]any) []problem {
	spec, ok := types[dsType]
	if !ok {
		return []problem{{"datasourceType", "must be one of " + strings.Join(typeNames(), ", ")}}
	}
	var ps []problem
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, known := spec.field(k)
		if !known {
			ps = append(ps, problem{k, "is not a field of " + dsType + " datasources"})
			continue
		}
		if p := checkValue(f, c[k]); p != "" {
			ps = append(ps, problem{k, p})
		}
	}
	for _, f := range spec.fields {
		if f.required && !filled(c, f.name) {
			if _, present := c[f.name]; present {
				continue // already reported as empty / wrong type
			}
			ps = append(ps, problem{f.name, "is required for " + dsType + " datasources"})
		}
	}
	if spec.rules != nil && len(ps) == 0 {
		ps = append(ps, spec.rules(c)...)
	}
	return ps
}

// checkValue checks one present value against its spec; "" when fine.
func checkValue(f fieldSpec, v any) string {
	switch f.kind {
	case kindPort:
		n, ok := asInt(v)
		if !ok {
			return "must be " + f.kind.String()
		}
		if n < 1 || n > 65535 {
			return "must be between 1 and 65535"
		}
	case kindBool:
		if _, ok := asBool(v); !ok {
			return "must be " + f.kind.String()
		}
	default:
		s, ok := asString(v)
		if !ok {
			return "must be " + f.kind.String()
		}
		if f.required && strings.TrimSpace(s) == "" {
			return "must not be empty"
		}
		// Seed 002 lists the values of sshTunnel and tableLevel ("enable" or "disable", "File"
		// or "Folder") and says "can be empty string" only of datasetPath: an empty optional
		// choice is not one of its values either.
		if len(f.enum) > 0 && !contains(f.enum, s) {
			return "must be one of " + quoteList(f.enum)
		}
	}
	return ""
}

func snowflakeRules(c map[string]any) []problem {
	switch str(c, "credentials") {
	case snowflakePassword:
		return requireAll(c, `when credentials is "`+snowflakePassword+`"`, "password")
	case snowflakeKeyPair:
		return requireAll(c, `when credentials is "`+snowflakeKeyPair+`"`, "privateKey")
	}
	return nil
}

func sshRules(c map[string]any) []problem {
	if str(c, "sshTunnel") != "enable" {
		return nil
	}
	return requireAll(c, `when sshTunnel is "enable"`, "sshHost", "sshPort", "sshUsername", "sshPrivateKey")
}

func searchRules(c map[string]any) []problem {
	var ps []problem
	st := str(c, "server_type")
	switch st {
	case serverElasticCloud, serverOpenCloud:
		ps = append(ps, requireAll(c, `when server_type is "`+st+`"`, "cloud_id")...)
	case serverSelfManaged:
		ps = append(ps, requireAll(c, `when server_type is "`+serverSelfManaged+`"`, "server_url")...)
	}
	disableAuth, _ := asBool(c["disableAuth"])
	if disableAuth && st != serverSelfManaged {
		ps = append(ps, problem{"disableAuth", `may be true only when server_type is "` + serverSelfManaged + `"`})
	}
	if !disableAuth {
		ps = append(ps, requireAll(c, "unless disableAuth is true", "username", "password")...)
	}
	return ps
}

func bigqueryRules(c map[string]any) []problem {
	s, _ := asString(c["credentials_json"])
	var obj map[string]any
	if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
		return []problem{{"credentials_json", "must be a JSON string holding the service account object"}}
	}
	return nil
}

// Tenancy settings (optional, passed through as "tenancySettings").
const (
	tenancyTable    = "TABLE"
	tenancyDatabase = "DATABASE"
)

// tenancyTableKeys are the keys required when tenancyLevel is TABLE.
var tenancyTableKeys = []string{"clientColumnType", "schemaName", "tableName", "tableClientNameColumn", "tablePrimaryKeyColumn"}

func tenancyKeys() []string { return append([]string{"tenancyLevel"}, tenancyTableKeys...) }

// validateTenancy checks a tenancySettings object as Databrain documents it.
func validateTenancy(t map[string]any) []problem {
	var ps []problem
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(tenancyKeys(), k) {
			ps = append(ps, problem{"tenancySettings." + k, "is not a tenancy setting (settings: " + strings.Join(tenancyKeys(), ", ") + ")"})
			continue
		}
		if _, ok := asString(t[k]); !ok {
			ps = append(ps, problem{"tenancySettings." + k, "must be a string"})
		}
	}
	if len(ps) > 0 {
		return ps
	}
	// "Must be either NUMBER or STRING" holds whatever the level; only its requirement is TABLE's.
	if _, given := t["clientColumnType"]; given && !contains([]string{"NUMBER", "STRING"}, str(t, "clientColumnType")) {
		ps = append(ps, problem{"tenancySettings.clientColumnType", `must be "NUMBER" or "STRING"`})
	}
	level := str(t, "tenancyLevel")
	switch level {
	case tenancyTable:
		for _, k := range tenancyTableKeys {
			if !filled(t, k) {
				ps = append(ps, problem{"tenancySettings." + k, `is required when tenancyLevel is "TABLE"`})
			}
		}
	case tenancyDatabase:
	case "":
		ps = append(ps, problem{"tenancySettings.tenancyLevel", "is required when tenancySettings is given"})
	default:
		ps = append(ps, problem{"tenancySettings.tenancyLevel", `must be "TABLE" or "DATABASE"`})
	}
	return ps
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = `"` + s + `"`
	}
	return strings.Join(q, ", ")
}
