package felt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

var _ core.Checker = (*target)(nil)

// showSource is the part of Felt's Show Source answer (Source in the spec) a check reads.
// Connection is one of SourceConnection-*: every variant has type; the Snowflake, STAC, GCS, S3,
// ABS and Databricks variants also list the source's credentials (id and credential.type; secret
// fields come back as felt:redacted).
type showSource struct {
	ID         string `json:"id"`
	SyncStatus string `json:"sync_status"`
	Connection *struct {
		Type        string `json:"type"`
		Credentials *[]struct {
			ID         string `json:"id"`
			Credential struct {
				Type string `json:"type"`
			} `json:"credential"`
		} `json:"credentials"`
	} `json:"connection"`
}

// Check implements core.Checker with one Show Source call (GET /api/v2/sources/{source_id}), the
// one read Felt's Sources API documents; it changes nothing. It proves that Felt answers at
// base_url, accepts the token and has the source. Connection mode: the source's connection type
// is the configured connection_type (else mismatch). Credential mode: Felt's API has no read of a
// single credential, but Show Source lists the credentials of Snowflake, STAC, GCS, S3, ABS and
// Databricks sources: the check finds credential_id there (else not_found) and compares its type
// with credential_type (else mismatch). A source whose Show Source lists no credentials (another
// connection type) answers unknown for credential mode: the credential cannot be seen without
// updating it. A check cannot prove that the credential Felt holds works: sync_status is reported
// in the message as Felt last saw it.
func (t *target) Check(ctx context.Context) core.CheckResult {
	resp, _, err := t.client.Do(ctx, http.MethodGet, t.sourcePath(), nil)
	if err != nil {
		return core.CheckResult{Status: core.CheckUnreachable, Message: errText(err)}
	}
	if resp.Status != http.StatusOK {
		return t.checkStatus(resp)
	}
	var src showSource
	if err := json.Unmarshal(resp.Body, &src); err != nil || src.ID == "" && src.SyncStatus == "" && src.Connection == nil {
		return core.CheckResult{Status: core.CheckUnreachable, Message: fmt.Sprintf(
			"GET %s answered 200 but not with a Felt source (is base_url Felt's API?): %s", t.sourcePath(), vendorhttp.Snippet(resp.Body, 120))}
	}
	syncNote := ""
	if src.SyncStatus != "" {
		syncNote = ", sync_status " + src.SyncStatus
	}
	// Felt's last sync failed: the credential it holds may not work (the health says so; the
	// check stays ready, a rotation is what repairs it).
	failed := src.SyncStatus == "failed"
	connType := ""
	if src.Connection != nil {
		connType = src.Connection.Type
	}
	if t.connectionType != "" && connType != "" && connType != t.connectionType {
		return core.CheckResult{Status: core.CheckMismatch, Message: fmt.Sprintf(
			"Felt source %q has connection type %s, the config says connection_type %s", t.sourceID, connType, t.connectionType)}
	}
	if !t.credentialMode() {
		if connType == "" {
			return core.CheckResult{Status: core.CheckReady, CredentialFails: failed, Message: fmt.Sprintf(
				"Felt source %q exists and the token is accepted%s; Felt showed no connection, so its type was not compared", t.sourceID, syncNote)}
		}
		return core.CheckResult{Status: core.CheckReady, CredentialFails: failed, Message: fmt.Sprintf(
			"Felt source %q exists, %s connection%s", t.sourceID, connType, syncNote)}
	}

	if src.Connection == nil || src.Connection.Credentials == nil {
		what := "its connection"
		if connType != "" {
			what = "its " + connType + " connection"
		}
		return core.CheckResult{Status: core.CheckUnknown, Message: fmt.Sprintf(
			"Felt source %q exists and the token is accepted%s, but Show Source lists no credentials for %s and Felt's API has no read of one credential: credential %q and its type are not checked",
			t.sourceID, syncNote, what, t.credentialID)}
	}
	var ids []string
	for _, c := range *src.Connection.Credentials {
		if c.ID != t.credentialID {
			ids = append(ids, c.ID)
			continue
		}
		if c.Credential.Type != t.feltType {
			return core.CheckResult{Status: core.CheckMismatch, Message: fmt.Sprintf(
				"Felt source %q credential %q has type %s, the config says credential_type %s", t.sourceID, t.credentialID, orNone(c.Credential.Type), t.feltType)}
		}
		return core.CheckResult{Status: core.CheckReady, CredentialFails: failed, Message: fmt.Sprintf(
			"Felt source %q exists%s; credential %q has type %s", t.sourceID, syncNote, t.credentialID, t.feltType)}
	}
	sort.Strings(ids)
	has := "it lists none"
	if len(ids) > 0 {
		has = "it has " + strings.Join(ids, ", ")
	}
	return core.CheckResult{Status: core.CheckNotFound, Message: fmt.Sprintf(
		"Felt source %q exists but has no credential %q (%s)", t.sourceID, t.credentialID, has)}
}

// checkStatus turns a non-200 Show Source answer into a check result.
func (t *target) checkStatus(resp *vendorhttp.Response) core.CheckResult {
	_, e := t.client.Classify(resp, errorMessage(resp.Body))
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return core.CheckResult{Status: core.CheckUnauthorized, Message: "Felt refused the platform token: " + e.Message}
	case resp.Status == http.StatusNotFound:
		return core.CheckResult{Status: core.CheckNotFound, Message: fmt.Sprintf("Felt has no source %q: %s", t.sourceID, e.Message)}
	case resp.Status == http.StatusTooManyRequests || resp.Status >= 500 || (resp.Status >= 300 && resp.Status < 400):
		return core.CheckResult{Status: core.CheckUnreachable, Message: e.Message}
	default:
		return core.CheckResult{Status: core.CheckUnknown, Message: "Show Source answered unexpectedly: " + e.Message}
	}
}

func errText(err error) string {
	var ce *core.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
