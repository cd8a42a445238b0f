package rivergen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

// adapter drives one RiverGen data source. It is immutable after NewTarget, so it is safe for
// concurrent use, and it keeps no state between Send and Verify.
type adapter struct {
	platform           string
	client             *vendorhttp.Client
	id                 int
	tokenField         string // "", api_key or oauth_token
	rotateCredentials  bool
	verify             bool
	testQuery          string // "" = not sent
	testTimeoutSeconds int    // 0 = not sent
}

var _ core.Adapter = (*adapter)(nil)

// DataSourceID returns the RiverGen data source id the target updates.
func (a *adapter) DataSourceID() int { return a.id }

func (a *adapter) credentialsPath() string {
	return fmt.Sprintf("/api/v1/data-sources/%d/credentials", a.id)
}

func (a *adapter) testPath() string {
	return fmt.Sprintf("/api/v1/data-sources/%d/test", a.id)
}

// what names the target in messages.
func (a *adapter) what() string {
	return fmt.Sprintf("rivergen data source %d (platform %q)", a.id, a.platform)
}

// Accepts lists password always, and token when the target names a token_field.
func (a *adapter) Accepts() []core.CredentialType {
	if a.tokenField != "" {
		return []core.CredentialType{core.TypePassword, core.TypeToken}
	}
	return []core.CredentialType{core.TypePassword}
}

// Build maps the credential to PATCH /api/v1/data-sources/{id}/credentials carrying only the
// fields being rotated. It does no I/O.
func (a *adapter) Build(cred core.Credential) (core.Request, error) {
	body := map[string]any{}
	var problems []core.Problem

	switch cred.Type {
	case core.TypePassword:
		if cred.Password.IsZero() {
			problems = append(problems, core.Problem{Field: "credential.password",
				Message: "is required: " + a.what() + " takes a password credential as its new database password"})
		} else {
			body["password"] = cred.Password
		}
		if cred.Username != "" {
			body["username"] = cred.Username
		}
	case core.TypeToken:
		switch {
		case a.tokenField == "":
			problems = append(problems, core.Problem{Field: "credential.type",
				Message: a.what() + " has no token_field configured (api_key or oauth_token), so it cannot take a token credential; set token_field on the target or send a password credential"})
		case cred.Token.IsZero():
			problems = append(problems, core.Problem{Field: "credential.token",
				Message: "is required: " + a.what() + " writes a token credential to its " + a.tokenField + " field"})
		default:
			body[a.tokenField] = cred.Token
		}
	case core.TypeKeyPair:
		problems = append(problems, core.Problem{Field: "credential.type",
			Message: a.what() + " cannot take a key_pair credential: RiverGen has no private-key field for the database besides the SSH tunnel key (send the SSH key as ssh_tunnel beside a password or token credential)"})
	default:
		problems = append(problems, core.Problem{Field: "credential.type",
			Message: fmt.Sprintf("%s cannot take a %q credential; it accepts %s", a.what(), cred.Type, core.JoinTypes(a.Accepts()))})
	}

	if t := cred.SSHTunnel; t != nil {
		if t.PrivateKey.IsZero() {
			problems = append(problems, core.Problem{Field: "credential.ssh_tunnel.private_key",
				Message: "is required when ssh_tunnel is given: " + a.what() + " stores it as ssh_private_key"})
		} else {
			body["ssh_private_key"] = t.PrivateKey
		}
		if !t.Passphrase.IsZero() {
			body["ssh_passphrase"] = t.Passphrase
		}
	}

	if len(problems) > 0 {
		return core.Request{}, &core.InputError{
			Message:  "credential not accepted by " + a.what(),
			Problems: problems,
		}
	}
	if a.rotateCredentials {
		body["rotate_credentials"] = true
	}
	return core.Request{Method: http.MethodPatch, Path: a.credentialsPath(), Body: body}, nil
}

// Send delivers the credentials update. 2xx is success unless the envelope says success: false.
func (a *adapter) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	retry, err := a.send(ctx, req)
	return core.SendResult{Check: err == nil && a.verify}, retry, err
}

func (a *adapter) send(ctx context.Context, req core.Request) (bool, error) {
	resp, retry, err := a.client.Send(ctx, req)
	if err != nil {
		return retry, err
	}
	// vendorhttp scrubbed the body of the request's secrets before anything is cut out of it.
	body := resp.Body
	if resp.Status >= 200 && resp.Status < 300 {
		var env envelope
		if json.Unmarshal(body, &env) == nil && env.Success != nil && !*env.Success {
			msg := vendorMessage(body)
			if msg == "" {
				msg = "RiverGen answered success: false"
			}
			return false, &core.Error{Code: core.CodeRejected, VendorStatus: resp.Status,
				Message: fmt.Sprintf("HTTP %d: %s did not take the credentials: %s", resp.Status, a.what(), msg)}
		}
		return false, nil
	}
	retry, e := a.classify(resp, vendorMessage(body))
	return retry, e
}

// Verify runs RiverGen's Test Connection (Send asks for it unless the target has verify: false:
// a Test Connection tests what RiverGen holds now, so each run is fresh). RiverGen answers
// 200 whether or not it could connect, so the verdict is data.connection_successful.
func (a *adapter) Verify(ctx context.Context, _ core.VerifyRequest) (core.Verification, bool, error) {
	resp, retry, err := a.client.Send(ctx, a.testRequest())
	if err != nil {
		return core.Verification{}, retry, err
	}
	if resp.Status < 200 || resp.Status >= 300 {
		retry, e := a.classify(resp, vendorMessage(resp.Body))
		return core.Verification{}, retry, e
	}
	var env struct {
		Success *bool `json:"success"`
		Data    *struct {
			ConnectionSuccessful *bool  `json:"connection_successful"`
			ErrorCode            string `json:"error_code"`
			ErrorMessage         string `json:"error_message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil || env.Data == nil || env.Data.ConnectionSuccessful == nil {
		if env.Success != nil && !*env.Success {
			return core.Verification{}, false, &core.Error{Code: core.CodeVerificationFailed, VendorStatus: resp.Status,
				Message: fmt.Sprintf("Test Connection of %s failed: %s", a.what(), orDefault(vendorMessage(resp.Body), "success: false"))}
		}
		return core.Verification{}, false, &core.Error{Code: core.CodeBadResponse, VendorStatus: resp.Status,
			Message: fmt.Sprintf("HTTP %d: Test Connection of %s gave no data.connection_successful: %s",
				resp.Status, a.what(), orDefault(vendorhttp.Snippet(resp.Body, 200), "empty body"))}
	}
	if *env.Data.ConnectionSuccessful {
		return core.Verification{Verified: true}, false, nil
	}
	msg := env.Data.ErrorCode
	switch {
	case msg != "" && env.Data.ErrorMessage != "":
		msg += ": " + env.Data.ErrorMessage
	case env.Data.ErrorMessage != "":
		msg = env.Data.ErrorMessage
	case msg == "":
		msg = fmt.Sprintf("RiverGen could not connect to data source %d with the new credentials (no reason given)", a.id)
	}
	return core.Verification{}, false, &core.Error{Code: core.CodeVerificationFailed, VendorStatus: resp.Status, Message: msg}
}

// testRequest is the Test Connection call. The body is always a JSON object: {} when the target
// sets neither test_query nor test_timeout_seconds.
func (a *adapter) testRequest() core.Request {
	body := map[string]any{}
	if a.testQuery != "" {
		body["test_query"] = a.testQuery
	}
	if a.testTimeoutSeconds > 0 {
		body["timeout_seconds"] = a.testTimeoutSeconds
	}
	return core.Request{Method: http.MethodPost, Path: a.testPath(), Body: body}
}

// classify maps a non-2xx RiverGen answer to a core.Error with RiverGen's meaning of 401/403/404.
func (a *adapter) classify(resp *vendorhttp.Response, msg string) (bool, *core.Error) {
	switch resp.Status {
	case http.StatusUnauthorized:
		msg = join("RiverGen refused the access token of platform "+fmt.Sprintf("%q", a.platform)+" (invalid or expired)", msg)
	case http.StatusForbidden:
		msg = join("the access token's user is not a member of any RiverGen organization (add them to an organization or use another token)", msg)
	case http.StatusNotFound:
		msg = join(fmt.Sprintf("data source %d not found", a.id), msg)
	}
	return a.client.Classify(resp, msg)
}

func join(ours, vendor string) string {
	if vendor == "" {
		return ours
	}
	return ours + " (RiverGen: " + vendor + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// envelope is RiverGen's response envelope, success and error alike.
type envelope struct {
	Success *bool           `json:"success"`
	Message json.RawMessage `json:"message"`
	Error   json.RawMessage `json:"error"`
	Detail  json.RawMessage `json:"detail"`
}

// maxMessage bounds how much of a vendor message ends up in an error.
const maxMessage = 500

// vendorMessage extracts a readable message from a RiverGen error body. It understands the
// assumed envelope {"success": false, "error": {"code", "message", "details"}}, a string "error",
// a plain {"message"}, and FastAPI-style {"detail": "..."} or {"detail": [{"loc", "msg"}]}. It
// never echoes a field value RiverGen quotes back ("input"). An unreadable body gives a bounded
// snippet; an empty one gives "".
func vendorMessage(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ""
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return vendorhttp.Snippet(trimmed, 200)
	}
	var parts []string
	if m := errorText(env.Error); m != "" {
		parts = append(parts, m)
	}
	if m := detailText(env.Detail); m != "" {
		parts = append(parts, m)
	}
	if m := stringOf(env.Message); m != "" && len(parts) == 0 {
		parts = append(parts, m)
	}
	if len(parts) == 0 {
		return vendorhttp.Snippet(trimmed, 200)
	}
	return vendorhttp.Clip(strings.Join(parts, "; "), maxMessage)
}

// errorText reads "error" as a string or as {"code", "message", "details"}.
func errorText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if s := stringOf(raw); s != "" {
		return s
	}
	var e struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Details json.RawMessage `json:"details"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	out := e.Code
	if e.Message != "" {
		if out != "" {
			out += ": "
		}
		out += e.Message
	}
	if d := detailText(e.Details); d != "" {
		out += " (" + d + ")"
	}
	return out
}

// detailText reads a detail string, or a list of {loc|field, msg|message} entries.
func detailText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if s := stringOf(raw); s != "" {
		return s
	}
	var list []struct {
		Loc     []any  `json:"loc"`
		Field   string `json:"field"`
		Msg     string `json:"msg"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &list) != nil {
		var one struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &one) == nil && (one.Code != "" || one.Message != "") {
			return strings.TrimPrefix(one.Code+": "+one.Message, ": ")
		}
		return ""
	}
	var parts []string
	for i, d := range list {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(list)-i))
			break
		}
		where := d.Field
		if where == "" && len(d.Loc) > 0 {
			locs := make([]string, 0, len(d.Loc))
			for _, l := range d.Loc {
				if l == "body" {
					continue
				}
				locs = append(locs, fmt.Sprint(l))
			}
			where = strings.Join(locs, ".")
		}
		msg := d.Msg
		if msg == "" {
			msg = d.Message
		}
		switch {
		case where != "" && msg != "":
			parts = append(parts, where+": "+msg)
		case msg != "":
			parts = append(parts, msg)
		case where != "":
			parts = append(parts, where)
		}
	}
	return strings.Join(parts, "; ")
}

func stringOf(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}
