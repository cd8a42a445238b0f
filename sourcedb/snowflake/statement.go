package snowflake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The statements credsync sends, built as text by pure functions. Snowflake's ALTER USER and
// DESC USER take no bind variables for the user or the key, so:
//
//   - the user is a double-quoted identifier with every " doubled (quoteIdent): inside double
//     quotes that is the only escape, so any name is exactly one identifier, matched exactly
//     (case-sensitively: a user created without quotes is stored upper-cased);
//   - a slot is never taken from input: it is one of the two constants, checked by validSlot;
//   - the public key is the base64 of its DER SubjectPublicKeyInfo, checked to hold only
//     [A-Za-z0-9+/=] before it goes between single quotes.

// quoteIdent is s as a Snowflake double-quoted identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// validSlot reports whether slot is one of the two key slots.
func validSlot(slot string) bool { return slot == SlotKey1 || slot == SlotKey2 }

const stmtSelect1 = "SELECT 1"

func stmtDescUser(user string) string { return "DESC USER " + quoteIdent(user) }

func stmtSetKey(user, slot, spki string) (string, error) {
	if !validSlot(slot) {
		return "", errBadSlot
	}
	if err := checkBase64(spki); err != nil {
		return "", err
	}
	return "ALTER USER " + quoteIdent(user) + " SET " + slot + " = '" + spki + "'", nil
}

func stmtUnsetKey(user, slot string) (string, error) {
	if !validSlot(slot) {
		return "", errBadSlot
	}
	return "ALTER USER " + quoteIdent(user) + " UNSET " + slot, nil
}

// statementTimeout is the "timeout" of every statement, in seconds: Snowflake cancels one that
// runs longer. Ours are metadata statements that take milliseconds.
const statementTimeout = 60

// userAgent is sent on every request (the SQL API requires one).
const userAgent = "credsync"

// statementBody is the JSON body of POST /api/v2/statements. Role and warehouse are left out
// when empty (the user's defaults apply).
type statementBody struct {
	Statement string `json:"statement"`
	Timeout   int    `json:"timeout"`
	Role      string `json:"role,omitempty"`
	Warehouse string `json:"warehouse,omitempty"`
}

// setHeaders puts the headers of every SQL API request on r.
func setHeaders(r *http.Request, token string) {
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", userAgent)
}

// newStatementRequest is the POST that submits one statement.
func newStatementRequest(ctx context.Context, endpoint string, body statementBody, token string) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding the request failed")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/api/v2/statements", bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("the endpoint does not make a request URL")
	}
	setHeaders(r, token)
	r.Header.Set("Content-Type", "application/json")
	return r, nil
}

// newStatusRequest is the GET that asks for a statement still running (after a 202). The
// handle is checked to be a plain token before it goes into the path.
func newStatusRequest(ctx context.Context, endpoint, handle, token string) (*http.Request, error) {
	if !validHandle(handle) {
		return nil, errors.New("the 202 answer (still running) holds a statement handle that is not one")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/api/v2/statements/"+handle, nil)
	if err != nil {
		return nil, fmt.Errorf("the endpoint does not make a request URL")
	}
	setHeaders(r, token)
	return r, nil
}

// validHandle accepts a statement handle (a UUID in practice): letters, digits, - and _.
func validHandle(h string) bool {
	if h == "" || len(h) > 128 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
