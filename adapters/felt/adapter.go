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
	// cred.SSHTunnel is for the source's targets that tunnel: Felt has no SSH field in any
	// update call, so it is not sent here, and the rotation is not refused for it.

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

// receipt is what a Felt send leaves for verification. Only the target's own run uses it, one
// call at a time.
type receipt struct {
	// baseline is the source's last_synced_at read just before the update (nil: it had never
	// synced): only a sync that finished after it counts.
	baseline *int64
	// running: the source was syncing when the baseline was read. That sync started before the
	// update, so the first one seen to finish may be it: it moves the baseline, and a new sync
	// is asked for.
	running bool
	// syncNeeded: the next check first asks Felt for a sync (Sync Source). Set in credential
	// mode, where Felt documents no sync after the update, and after a sync that was running
	// before the update finished.
	syncNeeded bool
	last       string // what the latest check saw, for the warning when time runs out
	// secrets are the update's secret values, in memory only: Felt holds them now, and any of
	// its answers may quote them, so each is scrubbed of them before a message is cut from it.
	secrets []string
}

// Send implements core.Adapter. With verification on it first reads the source (the baseline
// of a fresh sync status), then sends the update. Felt answers 202 Accepted and connects
// asynchronously.
func (t *target) Send(ctx context.Context, req core.Request) (core.SendResult, bool, error) {
	secrets := req.Secrets()
	rc := &receipt{last: "no answer yet", syncNeeded: t.credentialMode(), secrets: secrets}
	if t.verify {
		src, retry, err := t.showSource(ctx, secrets)
		if err != nil {
			// Nothing was written: the update is sent only after this read.
			err.NotSent = true
			err.Message = "reading the source before the update: " + err.Message
			return core.SendResult{}, retry, err
		}
		rc.baseline, rc.running = src.LastSyncedAt, src.SyncStatus == "syncing"
	}
	resp, retry, err := t.client.Send(ctx, req)
	if err != nil {
		return core.SendResult{}, retry, err
	}
	if resp.Status < 200 || resp.Status >= 300 {
		retry, e := t.client.Classify(resp, vendorMessage(resp.Body, secrets))
		return core.SendResult{}, retry, e
	}
	return core.SendResult{Check: t.verify, Receipt: rc}, false, nil
}

// source is what verification reads of Show Source.
type source struct {
	SyncStatus   string `json:"sync_status"`
	LastSyncedAt *int64 `json:"last_synced_at"`
}

// vendorMessage is errorMessage of a Felt answer scrubbed of secrets, before and after: a
// message cut to length must not keep half a secret.
func vendorMessage(body []byte, secrets []string) string {
	return core.Scrub(errorMessage(core.ScrubBytes(body, secrets)), secrets)
}

// showSource reads the source; a non-2xx answer or an unreadable one is an error. Its messages
// are scrubbed of secrets.
func (t *target) showSource(ctx context.Context, secrets []string) (source, bool, *core.Error) {
	var src source
	resp, retry, err := t.client.Do(ctx, http.MethodGet, t.sourcePath(), nil)
	if err != nil {
		return src, retry, toCoreError(err, retry)
	}
	if resp.Status != http.StatusOK {
		retry, e := t.client.Classify(resp, vendorMessage(resp.Body, secrets))
		return src, retry, e
	}
	if jerr := json.Unmarshal(resp.Body, &src); jerr != nil || src.SyncStatus == "" {
		return src, true, &core.Error{Code: core.CodeBadResponse, VendorStatus: resp.Status,
			Message: "Show Source answered without a readable sync_status: " + core.Scrub(vendorhttp.Snippet(core.ScrubBytes(resp.Body, secrets), 200), secrets)}
	}
	return src, false, nil
}

// startSync asks Felt to sync the source (Sync Source, documented to answer 202).
func (t *target) startSync(ctx context.Context, secrets []string) (bool, *core.Error) {
	resp, retry, err := t.client.Do(ctx, http.MethodPost, t.sourcePath()+"/sync", nil)
	if err != nil {
		return retry, toCoreError(err, retry)
	}
	if resp.Status < 200 || resp.Status >= 300 {
		return t.client.Classify(resp, vendorMessage(resp.Body, secrets))
	}
	return false, nil
}

func toCoreError(err error, retry bool) *core.Error {
	var ce *core.Error
	if !errors.As(err, &ce) {
		ce = &core.Error{Code: core.CodeNetwork, Message: err.Error()}
	}
	return ce
}

// Verify implements core.Adapter: one check. In credential mode the first check starts a sync
// (Felt documents none after a credential update). Each later check reads Show Source: a
// completed or failed sync_status counts only when last_synced_at moved past its value before
// the update, since a status left over from an earlier sync proves nothing. A check that Felt
// answers 429 or 5xx, or that is lost on the network, is asked again at the next interval (the
// update itself landed). Past verify_timeout the answer is a warning, not an error: the update
// landed, its effect is unknown. 401, 403, 404 and other final answers end verification with an
// error.
func (t *target) Verify(ctx context.Context, req core.VerifyRequest) (core.Verification, bool, error) {
	rc, _ := req.Receipt.(*receipt)
	if rc == nil {
		return core.Verification{}, false, &core.Error{Code: core.CodeInternal, Message: "felt: verification without the receipt of its send"}
	}
	if rc.syncNeeded {
		if retry, err := t.startSync(ctx, rc.secrets); err != nil {
			return t.checkFailed(ctx, req, rc, "starting a sync after the update", retry, err)
		}
		rc.syncNeeded = false
		rc.last = "a sync was requested; none finished since"
		return t.again(req, rc, t.pollInterval), false, nil
	}
	src, retry, err := t.showSource(ctx, rc.secrets)
	if err != nil {
		return t.checkFailed(ctx, req, rc, "checking the source after the update", retry, err)
	}
	fresh := src.LastSyncedAt != nil && (rc.baseline == nil || *src.LastSyncedAt > *rc.baseline)
	done := src.SyncStatus == "completed" || src.SyncStatus == "failed"
	switch {
	case fresh && done && rc.running:
		// The sync that was running before the update ended: it may have used the previous
		// credential. Count only syncs that end after it, and ask for one.
		rc.baseline, rc.running, rc.syncNeeded = src.LastSyncedAt, false, true
		rc.last = "sync_status " + src.SyncStatus + " of the sync that was already running before the update"
	case fresh && src.SyncStatus == "completed":
		return core.Verification{Verified: true}, false, nil
	case fresh && src.SyncStatus == "failed":
		return core.Verification{}, false, &core.Error{Code: core.CodeVerificationFailed, VendorStatus: http.StatusOK,
			Message: fmt.Sprintf("Felt could not connect to source %q with the new credential (sync_status: failed after the update): Felt holds it now; check that it is valid for this source, then rotate again", t.sourceID)}
	case fresh || src.SyncStatus == "syncing":
		rc.last = "sync_status " + src.SyncStatus
	default:
		rc.last = "sync_status " + src.SyncStatus + " from before the update (last_synced_at has not moved)"
	}
	return t.again(req, rc, t.pollInterval), false, nil
}

// again answers "check again after wait", or the warning when the next check would come after
// verify_timeout.
func (t *target) again(req core.VerifyRequest, rc *receipt, wait time.Duration) core.Verification {
	if req.Elapsed+wait > t.verifyTimeout {
		return core.Verification{Warning: fmt.Sprintf(
			"Felt accepted the update but did not report source %q as connected within %s (last: %s); verification unknown",
			t.sourceID, t.verifyTimeout, rc.last)}
	}
	return core.Verification{Again: wait}
}

// checkFailed is the answer to a check Felt did not answer usefully. A transient failure (429,
// 5xx, network, unreadable answer) is asked again at the next interval, or later when Felt asked
// for more with Retry-After; a final one (401, 403, 404, other 4xx) is an error. A check cut
// short by ctx gives its error: the engine stops.
func (t *target) checkFailed(ctx context.Context, req core.VerifyRequest, rc *receipt, doing string, retry bool, err *core.Error) (core.Verification, bool, error) {
	err.Message = doing + ": " + err.Message
	rc.last = err.Message
	if !retry || ctx.Err() != nil {
		return core.Verification{}, retry, err
	}
	return t.again(req, rc, max(t.pollInterval, err.RetryAfter)), false, nil
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
		if s := vendorhttp.Clip(e.Title, 100); s != "" {
			seg = append(seg, s)
		}
		switch {
		case e.Source.Pointer != nil && pointerPath(*e.Source.Pointer) != "":
			seg = append(seg, vendorhttp.Clip(pointerPath(*e.Source.Pointer), 100))
		case e.Source.Parameter != "":
			seg = append(seg, "parameter "+vendorhttp.Clip(e.Source.Parameter, 100))
		case e.Source.Header != "":
			seg = append(seg, "header "+vendorhttp.Clip(e.Source.Header, 100))
		}
		if s := vendorhttp.Clip(e.Detail, 300); s != "" {
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
