package rivergen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
)

var _ core.Checker = (*adapter)(nil)

// Check implements core.Checker with RiverGen's Test Connection
// (POST /api/v1/data-sources/{data_source_id}/test, the body Verify sends: test_query and
// timeout_seconds when the target sets them). RiverGen's doc names only two calls for a data
// source's credentials: the PATCH that changes them, and Test Connection, which changes nothing
// in RiverGen — it opens a connection to the database with the credentials RiverGen holds now
// (and runs test_query if one is configured). So it is the one call that can check a target
// without changing it:
//
//   - 401 / 403: RiverGen refused the access token (or its user is in no organization): unauthorized.
//   - 404: the data source does not exist: not_found.
//   - a network error, a timeout, 429 or 5xx: unreachable.
//   - 200: the token is accepted and the data source exists: ready. Whether the database took
//     the credentials RiverGen holds now (data.connection_successful) is said in the message and
//     in CredentialFails (the target's health, verify_every) but does not change the verdict: a
//     failing connection is what a rotation repairs.
//
// It cannot prove that the PATCH would be accepted (RiverGen has no dry run), nor which fields
// (password, api_key, oauth_token) the data source actually uses.
func (a *adapter) Check(ctx context.Context) core.CheckResult {
	resp, _, err := a.client.Send(ctx, a.testRequest())
	if err != nil {
		return core.CheckResult{Status: core.CheckUnreachable, Message: errText(err)}
	}
	if resp.Status < 200 || resp.Status >= 300 {
		_, e := a.classify(resp, vendorMessage(resp.Body))
		switch {
		case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
			return core.CheckResult{Status: core.CheckUnauthorized, Message: e.Message}
		case resp.Status == http.StatusNotFound:
			return core.CheckResult{Status: core.CheckNotFound, Message: e.Message}
		case resp.Status == http.StatusTooManyRequests || resp.Status >= 500 || resp.Status < 400:
			return core.CheckResult{Status: core.CheckUnreachable, Message: e.Message}
		default:
			return core.CheckResult{Status: core.CheckUnknown, Message: "Test Connection of " + a.what() + " answered unexpectedly: " + e.Message}
		}
	}
	var env struct {
		Success *bool `json:"success"`
		Data    *struct {
			ConnectionSuccessful *bool  `json:"connection_successful"`
			ErrorCode            string `json:"error_code"`
			ErrorMessage         string `json:"error_message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil || (env.Success == nil && env.Data == nil) {
		return core.CheckResult{Status: core.CheckUnreachable, Message: fmt.Sprintf(
			"HTTP %d: Test Connection of %s answered something that is not RiverGen's envelope (is base_url RiverGen's API?): %s",
			resp.Status, a.what(), orDefault(vendorhttp.Snippet(resp.Body, 120), "empty body"))}
	}
	if env.Data == nil || env.Data.ConnectionSuccessful == nil {
		return core.CheckResult{Status: core.CheckUnknown, Message: fmt.Sprintf(
			"HTTP %d: Test Connection of %s gave no data.connection_successful: %s", resp.Status, a.what(),
			orDefault(vendorMessage(resp.Body), "no message"))}
	}
	if *env.Data.ConnectionSuccessful {
		return core.CheckResult{Status: core.CheckReady, Message: fmt.Sprintf(
			"%s exists; Test Connection with the credentials RiverGen holds succeeded", a.what())}
	}
	why := env.Data.ErrorCode
	if env.Data.ErrorMessage != "" {
		if why != "" {
			why += ": "
		}
		why += env.Data.ErrorMessage
	}
	return core.CheckResult{Status: core.CheckReady, CredentialFails: true, Message: fmt.Sprintf(
		"%s exists and the token is accepted, but Test Connection with the credentials RiverGen holds now failed (%s): a rotation replaces them",
		a.what(), vendorhttp.Clip(orDefault(why, "no reason given"), maxMessage))}
}

func errText(err error) string {
	var ce *core.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}
