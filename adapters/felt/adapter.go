package felt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

// target is the adapter of one Felt target. It is immutable after NewTarget, so it is safe for
// concurrent use, and it keeps no state between calls.
type target struct {
	client *vendorhttp.Client

	sourceID       string
	credentialID   string // set: credential mode
	feltType       string // credential mode: the Felt credential type
	connectionType string // connection mode: the connection type (credential mode: optional)
	accepts        core.CredentialType

	verify        bool
	pollInterval  time.Duration
	verifyTimeout time.Duration
}

var _ core.Adapter = (*target)(nil)

func (t *target) credentialMode() bool { return t.credentialID != "" }

// describe names the target's vendor object and mode for messages.
func (t *target) describe() string {
	if t.credentialMode() {
		return fmt.Sprintf("Felt source %q credential %q (credential mode, Felt type %s)", t.sourceID, t.credentialID, t.feltType)
	}
	return fmt.Sprintf("Felt source %q (connection mode, %s connection)", t.sourceID, t.connectionType)
}

// Accepts implements core.Adapter: exactly the one neutral type this target's Felt type takes.
func (t *target) Accepts() []core.CredentialType { return []core.CredentialType{t.accepts} }

func (t *target) sourcePath() string { return "/api/v2/sources/" + url.PathEscape(t.sourceID) }

// Build implements core.Adapter. It is pure: it maps the credential to Felt's update call.
func (t *target) Build(cred core.Credential) (core.Request, error) {
	if cred.Type != t.accepts {
		return core.Request{}, t.inputError(core.Problem{Field: "credential.type",
			Message: fmt.Sprintf("%s takes a %s credential, not %s", t.describe(), t.accepts, typeName(cred.Type))})
	}
	var problems []core.Problem
	refuse := func(field, why string) { problems = append(problems, core.Problem{Field: field, Message: why}) }
	require := func(field string, missing bool) {
		if missing {
			refuse(field, fmt.Sprintf("is required: %s needs it", t.describe()))
		}
	}
	if cred.SSHTunnel != nil {
		refuse("credential.ssh_tunnel", fmt.Sprintf("is not supported: Felt has no SSH tunnel setting to update for %s", t.describe()))
	}

	var body map[string]any
	if t.credentialMode() {
		c := map[string]any{"type": t.feltType}
		switch t.feltType {
		case "key_pair":
			require("credential.private_key", cred.PrivateKey.IsZero())
			if cred.Username != "" {
				refuse("credential.username", fmt.Sprintf("cannot be rotated here: Felt's key_pair credential has no user name field (%s); the user belongs to the source's connection", t.describe()))
			}
			c["private_key"] = cred.PrivateKey
			if !cred.PrivateKeyPassphrase.IsZero() {
				c["private_key_passphrase"] = cred.PrivateKeyPassphrase
			}
			if cred.PrivateKeyName != "" {
				c["private_key_name"] = cred.PrivateKeyName
			}
		case "snowflake_pat":
			require("credential.token", cred.Token.IsZero())
			c["token"] = cred.Token
		case "gcp_service_account_json":
			require("credential.service_account_json", cred.ServiceAccountJSON.IsZero())
			c["service_account_json"] = cred.ServiceAccountJSON
			if cred.Filename != "" {
				c["service_account_filename"] = cred.Filename
			}
		case "aws_assume_role":
			require("credential.role_arn", cred.RoleARN == "")
			require("credential.role_session_name", cred.RoleSessionName == "")
			c["role_arn"] = cred.RoleARN
			c["role_session_name"] = cred.RoleSessionName
		case "azure_storage_connection_string":
			require("credential.connection_string", cred.ConnectionString.IsZero())
			c["connection_string"] = cred.ConnectionString
		case "custom_headers":
			require("credential.headers", len(cred.Headers) == 0)
			headers := make([]any, 0, len(cred.Headers))
			for i, h := range cred.Headers {
				require(fmt.Sprintf("credential.headers[%d].name", i), strings.TrimSpace(h.Name) == "")
				require(fmt.Sprintf("credential.headers[%d].value", i), h.Value.IsZero())
				headers = append(headers, map[string]any{"name": h.Name, "value": h.Value, "sensitive": h.Sensitive})
			}
			c["headers"] = headers
		default:
			return core.Request{}, &core.Error{Code: core.CodeInternal, Message: "felt: unhandled credential type " + t.feltType}
		}
		body = map[string]any{"credential": c}
	} else {
		c := map[string]any{"type": t.connectionType}
		switch t.accepts {
		case core.TypePassword:
			require("credential.password", cred.Password.IsZero())
			c["password"] = cred.Password
			if cred.Username != "" {
				c["user"] = cred.Username
			}
		case core.TypeToken:
			require("credential.token", cred.Token.IsZero())
			c["token"] = cred.Token
		case core.TypeGCPServiceAccount:
			// SourceUpdateConnectionParams-GoogleBigQuery takes the document base64-encoded; it has
			// no file name field, so cred.Filename is not sent.
			require("credential.service_account_json", cred.ServiceAccountJSON.IsZero())
			c["base64_encoded_service_account"] = core.NewSecret(base64.StdEncoding.EncodeToString([]byte(cred.ServiceAccountJSON.Reveal())))
		default:
			return core.Request{}, &core.Error{Code: core.CodeInternal, Message: "felt: unhandled connection type " + t.connectionType}
		}
		body = map[string]any{"connection": c}
	}
	if len(problems) > 0 {
		return core.Request{}, t.inputError(problems...)
	}
	path := t.sourcePath() + "/update"
	if t.credentialMode() {
		path = t.sourcePath() + "/credentials/" + url.PathEscape(t.credentialID) + "/update"
	}
	return core.Request{Method: http.MethodPost, Path: path, Body: body}, nil
}

func (t *target) inputError(p ...core.Problem) *core.InputError {
	return &core.InputError{Message: "credential not accepted by " + t.describe(), Problems: p}
}

func typeName(ct core.CredentialType) string {
	if ct == "" {
		return "a credential without a type"
	}
	return string(ct)
}

// Send implements core.Adapter. Felt answers 202 Accepted and connects asynchronously.
func (t *target) Send(ctx context.Context, req core.Request) (bool, error) {
	resp, retry, err := t.client.Send(ctx, req)
	if err != nil {
		return retry, err
	}
	if resp.Status >= 200 && resp.Status < 300 {
		return false, nil
	}
	// vendorhttp scrubbed the body of the request's secrets before anything is cut out of it.
	retry, e := t.client.Classify(resp, errorMessage(resp.Body))
	return retry, e
}

// Verify implements core.Adapter: it polls Show Source until sync_status is completed or failed,
// within verify_timeout. A sync still running at the end is a warning, not an error: the update
// itself landed.
func (t *target) Verify(ctx context.Context) (core.Verification, bool, error) {
	if !t.verify {
		return core.Verification{Verified: false}, false, nil
	}
	deadline := time.Now().Add(t.verifyTimeout)
	pollCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	path := t.sourcePath()

	last := "no answer yet"
	for {
		wait := t.pollInterval
		resp, _, err := t.client.Do(pollCtx, http.MethodGet, path, nil)
		switch {
		case err != nil:
			if pollCtx.Err() != nil && ctx.Err() == nil && last != "no answer yet" {
				// verify_timeout cut this poll short: what the previous one said is more telling.
				break
			}
			var ce *core.Error
			if errors.As(err, &ce) {
				last = ce.Message
			} else {
				last = err.Error()
			}
		case resp.Status == http.StatusOK:
			var src struct {
				SyncStatus string `json:"sync_status"`
			}
			if jerr := json.Unmarshal(resp.Body, &src); jerr != nil || src.SyncStatus == "" {
				last = "Show Source answered without a readable sync_status: " + vendorhttp.Snippet(resp.Body, 200)
				break
			}
			switch src.SyncStatus {
			case "completed":
				return core.Verification{Verified: true}, false, nil
			case "failed":
				return core.Verification{}, false, &core.Error{
					Code:         core.CodeVerificationFailed,
					Message:      fmt.Sprintf("Felt could not connect to source %q with the new credential (sync_status: failed)", t.sourceID),
					VendorStatus: resp.Status,
				}
			default:
				last = "sync_status " + src.SyncStatus
			}
		case resp.Status == http.StatusTooManyRequests || resp.Status >= 500:
			_, e := t.client.Classify(resp, errorMessage(resp.Body))
			last = e.Message
			if e.RetryAfter > wait {
				wait = e.RetryAfter
			}
		default:
			// 401, 403, 404, other 4xx, redirects: polling again would get the same answer.
			_, e := t.client.Classify(resp, errorMessage(resp.Body))
			e.Message = "checking the source after the update: " + e.Message
			e.Retryable = false
			return core.Verification{}, false, e
		}

		if ctx.Err() == context.Canceled {
			return core.Verification{}, false, &core.Error{Code: core.CodeCanceled, Message: "verification canceled: the update was sent; its outcome is unknown"}
		}
		if time.Until(deadline) < wait || ctx.Err() != nil {
			// Too little time left for another poll: give up without an error, the update landed.
			return core.Verification{Verified: false, Warning: fmt.Sprintf(
				"Felt accepted the update but did not report source %q as connected within %s (last: %s); verification unknown",
				t.sourceID, t.verifyTimeout, last)}, false, nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-pollCtx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// feltErrors is the common part of Felt's error bodies: UnauthorizedError (source.header),
// NotFoundError and InternalServerError (source.parameter) and JsonErrorResponse (source.pointer).
type feltErrors struct {
	Errors []struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Source struct {
			Pointer   *string `json:"pointer"`
			Parameter string  `json:"parameter"`
			Header    string  `json:"header"`
		} `json:"source"`
	} `json:"errors"`
}

// maxErrors bounds how many of Felt's errors a message lists.
const maxErrors = 5

// errorMessage turns Felt's error body into one readable line such as
// "Unprocessable Entity: credential.private_key: is invalid". An empty body gives ""; a body that
// is not Felt's shape gives a short snippet of it.
func errorMessage(body []byte) string {
	if len(strings.TrimSpace(string(body))) == 0 {
		return ""
	}
	var fe feltErrors
	if err := json.Unmarshal(body, &fe); err != nil || len(fe.Errors) == 0 {
		return vendorhttp.Snippet(body, 200)
	}
	var parts []string
	for i, e := range fe.Errors {
		if i == maxErrors {
			parts = append(parts, fmt.Sprintf("and %d more", len(fe.Errors)-maxErrors))
			break
		}
		var seg []string
		if s := clip(e.Title, 100); s != "" {
			seg = append(seg, s)
		}
		switch {
		case e.Source.Pointer != nil && pointerPath(*e.Source.Pointer) != "":
			seg = append(seg, clip(pointerPath(*e.Source.Pointer), 100))
		case e.Source.Parameter != "":
			seg = append(seg, "parameter "+clip(e.Source.Parameter, 100))
		case e.Source.Header != "":
			seg = append(seg, "header "+clip(e.Source.Header, 100))
		}
		if s := clip(e.Detail, 300); s != "" {
			seg = append(seg, s)
		}
		if len(seg) > 0 {
			parts = append(parts, strings.Join(seg, ": "))
		}
	}
	if len(parts) == 0 {
		return vendorhttp.Snippet(body, 200)
	}
	return strings.Join(parts, "; ")
}

// pointerPath turns a JSON pointer ("/credential/headers/0/value") into a dotted path
// ("credential.headers.0.value").
func pointerPath(p string) string {
	p = strings.TrimPrefix(p, "#")
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return ""
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return strings.Join(segs, ".")
}

func clip(s string, n int) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}
