package databrain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

// UpdatePath is Databrain's Update Datasource endpoint, below the platform's base URL.
const UpdatePath = "/api/v2/datasource"

// Adapter drives one Databrain datasource. It is immutable after NewTarget, so it is safe for
// concurrent use, and it keeps nothing between rotations.
type Adapter struct {
	platform string
	client   *vendorhttp.Client
	dsType   string
	spec     *typeSpec
	name     string         // credentials.name, the datasource to update
	fields   map[string]any // the non-secret credentials fields from config
	tenancy  map[string]any // tenancySettings, nil when not configured
}

var _ core.Adapter = (*Adapter)(nil)

// DatasourceType returns the target's datasourceType.
func (a *Adapter) DatasourceType() string { return a.dsType }

// DatasourceName returns the Databrain datasource name (credentials.name) the target updates.
func (a *Adapter) DatasourceName() string { return a.name }

// Accepts lists the credential types the target's datasourceType can take.
func (a *Adapter) Accepts() []core.CredentialType {
	return append([]core.CredentialType(nil), a.spec.accepts...)
}

// Build merges the rotated credential into the configured fields and returns the full-replacement
// PUT /api/v2/datasource request, after validating the complete structure for the datasourceType.
// It does no I/O. A credential this datasource cannot take gives a *core.InputError.
func (a *Adapter) Build(cred core.Credential) (core.Request, error) {
	if !a.accepts(cred.Type) {
		return core.Request{}, a.inputError(core.Problem{Field: "credential.type",
			Message: fmt.Sprintf("databrain %s datasource %q takes only %s credentials, not %s",
				a.dsType, a.name, core.JoinTypes(a.spec.accepts), cred.Type)})
	}

	creds := make(map[string]any, len(a.fields)+4)
	for k, v := range a.fields {
		creds[k] = v
	}
	creds["name"] = a.name
	if a.spec.userKey != "" && cred.Username != "" {
		creds[a.spec.userKey] = cred.Username
	}

	switch cred.Type {
	case core.TypePassword:
		if a.dsType == "snowflake" {
			creds["credentials"] = snowflakePassword
		}
		creds["password"] = cred.Password
	case core.TypeKeyPair: // snowflake only
		creds["credentials"] = snowflakeKeyPair
		creds["privateKey"] = cred.PrivateKey
		if !cred.PrivateKeyPassphrase.IsZero() {
			creds["privateKeyPass"] = cred.PrivateKeyPassphrase
		}
	case core.TypeGCPServiceAccount: // bigquery: a JSON string, not an object
		creds["credentials_json"] = core.NewSecret(cred.ServiceAccountJSON.Reveal())
	case core.TypeToken: // databricks
		creds["token"] = cred.Token
	case core.TypeOAuthClient: // firebolt
		creds["client_id"] = cred.ClientID
		creds["client_secret"] = cred.ClientSecret
	case core.TypeAWSAccessKey: // athena, csv, awss3
		creds["s3AccessKeyId"] = cred.AccessKeyID
		creds["s3SecretAccessKey"] = cred.SecretAccessKey
	}

	var problems []core.Problem
	if a.spec.ssh && str(creds, "sshTunnel") == "enable" {
		switch {
		case cred.SSHTunnel == nil || cred.SSHTunnel.PrivateKey.IsZero():
			problems = append(problems, core.Problem{Field: "credential.ssh_tunnel.private_key", Message: fmt.Sprintf(
				"is required: databrain %s datasource %q reaches the database through an SSH tunnel (sshTunnel: enable) and Databrain's update replaces the whole structure, sshPrivateKey included",
				a.dsType, a.name)})
		case !cred.SSHTunnel.Passphrase.IsZero():
			problems = append(problems, core.Problem{Field: "credential.ssh_tunnel.passphrase", Message: fmt.Sprintf(
				"databrain %s datasource %q cannot take it: Databrain has no field for an SSH key passphrase; send an unencrypted key",
				a.dsType, a.name)})
		default:
			creds["sshPrivateKey"] = cred.SSHTunnel.PrivateKey
		}
	}
	// Otherwise an ssh_tunnel on the credential is for other targets of the source: this
	// datasource does not tunnel, so it is not sent here.

	if len(problems) == 0 {
		for _, p := range validateCredentials(a.dsType, creds) {
			problems = append(problems, a.credentialProblem(p))
		}
	}
	if len(problems) > 0 {
		return core.Request{}, a.inputError(problems...)
	}

	body := map[string]any{"datasourceType": a.dsType, "credentials": creds}
	if a.tenancy != nil {
		t := make(map[string]any, len(a.tenancy))
		for k, v := range a.tenancy {
			t[k] = v
		}
		body["tenancySettings"] = t
	}
	return core.Request{Method: http.MethodPut, Path: UpdatePath, Body: body}, nil
}

func (a *Adapter) accepts(t core.CredentialType) bool {
	for _, x := range a.spec.accepts {
		if x == t {
			return true
		}
	}
	return false
}

func (a *Adapter) inputError(problems ...core.Problem) *core.InputError {
	return &core.InputError{
		Message:  fmt.Sprintf("databrain target %q (%s datasource) cannot take this credential", a.name, a.dsType),
		Problems: problems,
	}
}

// credentialProblem addresses a structure problem found after the merge to the credential field
// that fills it (or to the target config, which config loading should already have caught).
func (a *Adapter) credentialProblem(p problem) core.Problem {
	field := "credential"
	msg := fmt.Sprintf("databrain %s datasource %q: %s %s", a.dsType, a.name, p.field, p.msg)
	if f, ok := a.spec.field(p.field); ok {
		switch f.origin {
		case fromCredential:
			field = f.credPath
		case fromEither:
			field = f.credPath
			msg += fmt.Sprintf(" (the target's fields have no %s, so the credential must carry username)", f.name)
		default:
			msg = "target config: " + msg
		}
	}
	return core.Problem{Field: field, Message: msg}
}

// Send delivers the update. Databrain validates the body, tests the connection with the new
// credential and re-caches the schema before it answers 200 {"name": ...}.
func (a *Adapter) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	retry, err := a.send(ctx, req)
	// A 200 means Databrain connected with the new credential: verified, no further call.
	return core.SendResult{Verified: err == nil}, retry, err
}

func (a *Adapter) send(ctx context.Context, req core.Request) (bool, error) {
	resp, retry, err := a.client.Send(ctx, req)
	if err != nil {
		return retry, err
	}
	if resp.Status >= 200 && resp.Status < 300 {
		return false, nil
	}
	// vendorhttp scrubbed the body of the request's secrets before anything is cut out of it.
	code, msg := parseError(resp.Body)
	retry, e := a.client.Classify(resp, msg)
	if o, ok := vendorCodes[code]; ok && resp.Status != http.StatusTooManyRequests {
		e.Code = o.code
		if o.retry && e.RetryAfter == 0 {
			e.RetryAfter = vendorhttp.RetryAfter(resp.Header, time.Now())
		}
		retry = o.retry
	}
	return retry, e
}

// Verify is never asked for (Send says the write verified itself); it calls nothing: a 200 from
// the update already means that Databrain connected with the new credential (it answers
// CREDENTIAL_TEST_FAILED otherwise).
func (a *Adapter) Verify(context.Context, core.VerifyRequest) (core.Verification, bool, error) {
	return core.Verification{Verified: true}, false, nil
}

// vendorCodes classifies Databrain's error codes (seed 002's table).
var vendorCodes = map[string]struct {
	code  string
	retry bool
}{
	"INVALID_REQUEST_BODY":           {core.CodeRejected, false},
	"DATASOURCE_NAME_ERROR":          {core.CodeNotFound, false}, // 400 "Datasource not found"
	"DATASOURCE_NOT_FOUND":           {core.CodeNotFound, false},
	"CREDENTIAL_TEST_FAILED":         {core.CodeVerificationFailed, false},
	"AUTHENTICATION_ERROR":           {core.CodeUnauthorized, false},
	"SCHEMA_CACHE_FAILED":            {core.CodeVendorError, true},
	"TENANCY_SETTINGS_CREATE_FAILED": {core.CodeVendorError, true},
	"TENANCY_SETTINGS_UPDATE_FAILED": {core.CodeVendorError, true},
	"INTERNAL_SERVER_ERROR":          {core.CodeVendorError, true},
}

// maxMessage bounds the vendor's message kept in an error.
const maxMessage = 300

var codeRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// parseError reads Databrain's error body. The doc names the codes but not the body; credsync
// assumes {"error": {"code": "...", "message": "..."}} and also reads {"error": "..."} and a
// top-level {"code", "message"}. It returns the code ("" if none) and "<CODE>: <message>", or a
// snippet of an unreadable body. It never panics, whatever the body.
func parseError(body []byte) (string, string) {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Code    any             `json:"code"`
		Message any             `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", vendorhttp.Snippet(body, 200)
	}
	code, msg := textOf(env.Code), textOf(env.Message)
	if len(env.Error) > 0 {
		var inner struct {
			Code    any `json:"code"`
			Message any `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(env.Error, &s) == nil:
			if msg == "" {
				msg = s
			}
		case json.Unmarshal(env.Error, &inner) == nil:
			if c := textOf(inner.Code); c != "" {
				code = c
			}
			if m := textOf(inner.Message); m != "" {
				msg = m
			}
		}
	}
	if !codeRE.MatchString(code) {
		if code != "" && msg == "" {
			msg = code
		}
		code = ""
	}
	msg = vendorhttp.Clip(msg, maxMessage)
	switch {
	case code != "" && msg != "":
		return code, code + ": " + msg
	case code != "":
		return code, code
	case msg != "":
		return "", msg
	}
	return "", vendorhttp.Snippet(body, 200)
}

func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	}
	return ""
}
