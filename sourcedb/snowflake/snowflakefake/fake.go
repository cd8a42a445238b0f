// Package snowflakefake is a fake of Snowflake's SQL API v2 (POST /api/v2/statements and GET
// /api/v2/statements/{handle}) for the key-pair rotation of package sourcedb/snowflake: an
// httptest server holding users with their two public-key slots (RSA_PUBLIC_KEY and
// RSA_PUBLIC_KEY_2).
//
// It is a second, independent reading of Snowflake's documentation, sharing no code or table
// with the package it tests:
//
//   - every request carries "Authorization: Bearer <JWT>" with "X-Snowflake-Authorization-
//     Token-Type: KEYPAIR_JWT", a User-Agent and "Accept: application/json". The JWT is RS256;
//     its sub is "<ACCOUNT>.<USER>" and its iss "<ACCOUNT>.<USER>.SHA256:<fingerprint>", both
//     upper case (the account before its first dot); the fingerprint must be that of the key in
//     one of the user's slots, the signature must verify with that key, exp must not have passed
//     and may be at most one hour after iat, and iat may not be in the future (a minute of skew
//     is allowed). Anything else is 401 with code 390144 ("JWT token is invalid").
//   - the statement is one of exactly: SELECT 1; DESC[RIBE] USER <name>; ALTER USER <name> SET
//     RSA_PUBLIC_KEY[_2] = '<base64 DER SubjectPublicKeyInfo>'; ALTER USER <name> UNSET
//     RSA_PUBLIC_KEY[_2]. Keywords are case-insensitive; a name is a double-quoted identifier
//     (exact, "" for a quote) or an unquoted one (upper-cased). Anything else is 422 with code
//     001003, a syntax error whose message quotes the statement as Snowflake's does.
//   - only an admin user (AddUser's admin) may DESC or ALTER another user; others may DESC and
//     ALTER themselves. An unknown user is 422 code 002003 ("does not exist or not authorized");
//     a non-admin altering another user 422 code 003001 ("Insufficient privileges").
//   - what was applied (SET and UNSET) is kept in History for invariant checkers, and every
//     request received in Requests (for golden files).
//   - SetFault makes it answer 503 (or another status) to the next requests, answer 202 to the
//     next statements and make their handles be polled, or answer late.
//
// Codes and messages that the documentation does not give are this fake's own choice: 400 with
// code 391903 for a missing User-Agent and 391902 for a missing Accept or a body that is not the
// statement object, 422 with 002028 for a public key that is not one, and 422 with 000709 for a
// statement handle the user does not own. Like the other fakes it links no testing code.
package snowflakefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/httprec"
)

// The two slots.
const (
	Slot1 = "RSA_PUBLIC_KEY"
	Slot2 = "RSA_PUBLIC_KEY_2"
)

// Applied is one change the fake made to a user's slots.
type Applied struct {
	At          time.Time
	By          string // the user whose token ran the statement
	Statement   string
	User        string // the user changed
	Slot        string // Slot1 or Slot2
	Op          string // "SET" or "UNSET"
	Fingerprint string // SET: the new key's; UNSET: the removed key's ("" when the slot was empty)
}

// Fault makes the fake misbehave; the zero Fault behaves.
type Fault struct {
	Unavailable int           // the next Unavailable requests are answered Status
	Status      int           // 0: 503
	Async       int           // the next Async statements are answered 202 (executed, result held)
	Polls       int           // GETs of such a handle answered 202 before the result
	Latency     time.Duration // every answer waits this long (or until the client gives up)
}

type user struct {
	name     string
	admin    bool
	disabled bool
	keys     [2]*rsa.PublicKey
}

type pending struct {
	owner  string
	polls  int
	status int
	body   []byte
}

// Server is the fake.
type Server struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	account  string // as in claims
	users    map[string]*user
	history  []Applied
	requests []httprec.Request
	fault    Fault
	handles  map[string]*pending
	now      func() time.Time
	authErr  string
}

// New starts a fake of account (as in the JWT claims: "MYORG-MYACCOUNT", or a locator, whose
// part before the first dot counts).
func New(account string) *Server {
	acct, _, _ := strings.Cut(account, ".")
	s := &Server{account: strings.ToUpper(acct), users: map[string]*user{}, handles: map[string]*pending{}, now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetNow replaces the clock the tokens are checked against.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetFault installs a fault (the zero Fault removes it).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// AddUser creates (or replaces) a user, stored under name exactly as given (give it upper case,
// as Snowflake stores a name created without quotes). keys are PEMs, public ("PUBLIC KEY") or
// private (PKCS#8 or PKCS#1, of which the public half is kept), seeded into RSA_PUBLIC_KEY and
// RSA_PUBLIC_KEY_2 in that order; "" leaves a slot empty. It panics on a key that does not
// parse (a test's mistake; the panic does not quote the key).
func (s *Server) AddUser(name string, admin bool, keys ...string) {
	if len(keys) > 2 {
		panic("snowflakefake: a user has two key slots")
	}
	u := &user{name: name, admin: admin}
	for i, k := range keys {
		if k == "" {
			continue
		}
		pub, err := publicFromPEM(k)
		if err != nil {
			panic("snowflakefake: AddUser " + name + ": " + err.Error())
		}
		u.keys[i] = pub
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = u
}

// SetDisabled marks a user disabled (DESC USER shows DISABLED true; its tokens are refused).
func (s *Server) SetDisabled(name string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[name]; u != nil {
		u.disabled = disabled
	}
}

// Slots returns the fingerprints of the keys in a user's slots ("" for an empty slot).
func (s *Server) Slots(name string) (fp1, fp2 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return "", ""
	}
	return fingerprint(u.keys[0]), fingerprint(u.keys[1])
}

// History returns what was applied, in order.
func (s *Server) History() []Applied {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Applied(nil), s.history...)
}

// Requests returns every request received, in order, bodies included.
func (s *Server) Requests() []httprec.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]httprec.Request(nil), s.requests...)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// LastAuthError says why the last refused token was refused (for a test's failure message).
func (s *Server) LastAuthError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authErr
}

// Fingerprint is "SHA256:" + base64(sha256(DER SubjectPublicKeyInfo)) of a PEM key (public or
// private), as DESC USER shows it.
func Fingerprint(pemKey string) (string, error) {
	pub, err := publicFromPEM(pemKey)
	if err != nil {
		return "", err
	}
	return fingerprint(pub), nil
}

func publicFromPEM(k string) (*rsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(k))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	var key any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, errors.New("unknown PEM type " + b.Type)
	}
	if err != nil {
		return nil, errors.New("the key does not parse")
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k, nil
	case *rsa.PrivateKey:
		return &k.PublicKey, nil
	}
	return nil, errors.New("not an RSA key")
}

func fingerprint(pub *rsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(h[:])
}

// ---- serving

func newHandle() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sqlError(w http.ResponseWriter, status int, code, sqlState, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg, "sqlState": sqlState, "statementHandle": newHandle()})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.requests = append(s.requests, httprec.Record(r, body))
	f := &s.fault
	latency := f.Latency
	fail := 0
	if f.Unavailable > 0 {
		f.Unavailable--
		fail = f.Status
		if fail == 0 {
			fail = http.StatusServiceUnavailable
		}
	}
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if fail != 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fail)
		_, _ = io.WriteString(w, "<html><body>Service Unavailable</body></html>")
		return
	}
	switch {
	case r.URL.Path == "/api/v2/statements":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.submit(w, r, body)
	case strings.HasPrefix(r.URL.Path, "/api/v2/statements/") && !strings.Contains(strings.TrimPrefix(r.URL.Path, "/api/v2/statements/"), "/"):
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.status(w, r, strings.TrimPrefix(r.URL.Path, "/api/v2/statements/"))
	default:
		http.NotFound(w, r)
	}
}

// common checks the headers and the token and returns the user the token is for.
func (s *Server) common(w http.ResponseWriter, r *http.Request) (*user, bool) {
	if r.Header.Get("User-Agent") == "" {
		sqlError(w, http.StatusBadRequest, "391903", "", "User-Agent header is required.")
		return nil, false
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		sqlError(w, http.StatusBadRequest, "391902", "", "Accept header must be application/json.")
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, why := s.verify(r)
	if why != "" {
		s.authErr = why
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "390144", "message": "JWT token is invalid. [" + newHandle() + "]"})
		return nil, false
	}
	return u, true
}

// verify checks the token; it returns the user or why not. s.mu is held.
func (s *Server) verify(r *http.Request) (*user, string) {
	if r.Header.Get("X-Snowflake-Authorization-Token-Type") != "KEYPAIR_JWT" {
		return nil, "the token type is not KEYPAIR_JWT"
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, "no bearer token"
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, "not a JWT"
	}
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	cb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, "a part is not base64url"
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" || (hdr.Typ != "" && hdr.Typ != "JWT") {
		return nil, "the header is not RS256"
	}
	var c struct {
		Iss *string `json:"iss"`
		Sub *string `json:"sub"`
		Iat *int64  `json:"iat"`
		Exp *int64  `json:"exp"`
	}
	if json.Unmarshal(cb, &c) != nil || c.Iss == nil || c.Sub == nil || c.Iat == nil || c.Exp == nil {
		return nil, "the claims lack iss, sub, iat or exp"
	}
	acct, name, ok := strings.Cut(*c.Sub, ".")
	if !ok || acct != s.account {
		return nil, "sub's account is not " + s.account
	}
	if name != strings.ToUpper(name) {
		return nil, "sub's user is not upper case"
	}
	fp, ok := strings.CutPrefix(*c.Iss, *c.Sub+".")
	if !ok || !strings.HasPrefix(fp, "SHA256:") {
		return nil, "iss is not sub.SHA256:<fingerprint>"
	}
	var u *user
	for _, cand := range s.users {
		if strings.ToUpper(cand.name) == name {
			u = cand
			break
		}
	}
	if u == nil {
		return nil, "no such user"
	}
	var key *rsa.PublicKey
	for _, k := range u.keys {
		if k != nil && fingerprint(k) == fp {
			key = k
		}
	}
	if key == nil {
		return nil, "the fingerprint is in neither slot of " + u.name
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return nil, "the signature does not verify"
	}
	now := s.now().Unix()
	switch {
	case *c.Exp <= now:
		return nil, "the token expired"
	case *c.Exp-*c.Iat > 3600 || *c.Exp <= *c.Iat:
		return nil, "exp is more than an hour after iat"
	case *c.Iat > now+60:
		return nil, "iat is in the future"
	case u.disabled:
		return nil, "the user is disabled"
	}
	return u, ""
}

type request struct {
	Statement  *string         `json:"statement"`
	Timeout    *int            `json:"timeout"`
	Role       string          `json:"role"`
	Warehouse  string          `json:"warehouse"`
	Database   string          `json:"database"`
	Schema     string          `json:"schema"`
	Bindings   json.RawMessage `json:"bindings"`
	Parameters json.RawMessage `json:"parameters"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, body []byte) {
	u, ok := s.common(w, r)
	if !ok {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		sqlError(w, http.StatusBadRequest, "391902", "", "Content-Type must be application/json.")
		return
	}
	var req request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil || req.Statement == nil {
		sqlError(w, http.StatusBadRequest, "391902", "", "Unable to parse the request body.")
		return
	}
	if req.Timeout != nil && (*req.Timeout < 0 || *req.Timeout > 604800) {
		sqlError(w, http.StatusBadRequest, "391902", "", "Invalid timeout.")
		return
	}
	if req.Role != "" && !u.admin && !strings.EqualFold(req.Role, "PUBLIC") {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"code": "390189", "message": "Role '" + strings.ToUpper(req.Role) + "' specified in the connect string is not granted to this user."})
		return
	}
	status, out := s.execute(u, *req.Statement)
	s.mu.Lock()
	async := s.fault.Async > 0 && status == http.StatusOK
	if async {
		s.fault.Async--
		h, _ := out["statementHandle"].(string)
		b, _ := json.Marshal(out)
		s.handles[h] = &pending{owner: u.name, polls: s.fault.Polls, status: status, body: b}
		s.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]any{
			"code": "333334", "statementHandle": h, "statementStatusUrl": "/api/v2/statements/" + h,
			"message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
		})
		return
	}
	s.mu.Unlock()
	writeJSON(w, status, out)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, h string) {
	u, ok := s.common(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.handles[h]
	if p == nil || p.owner != u.name {
		s.mu.Unlock()
		sqlError(w, http.StatusUnprocessableEntity, "000709", "02000", "Statement "+h+" not found")
		return
	}
	if p.polls > 0 {
		p.polls--
		s.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]any{"code": "333334", "statementHandle": h, "statementStatusUrl": "/api/v2/statements/" + h,
			"message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management."})
		return
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.status)
	_, _ = w.Write(p.body)
}

func result(columns []string, rows [][]any) map[string]any {
	h := newHandle()
	rowType := make([]map[string]any, len(columns))
	for i, c := range columns {
		rowType[i] = map[string]any{"name": c, "type": "text", "nullable": true, "database": "", "schema": "", "table": "", "length": 16777216}
	}
	if rows == nil {
		rows = [][]any{}
	}
	return map[string]any{
		"resultSetMetaData": map[string]any{"numRows": len(rows), "format": "jsonv2", "rowType": rowType,
			"partitionInfo": []map[string]any{{"rowCount": len(rows)}}},
		"data": rows, "code": "090001", "sqlState": "00000", "statementHandle": h,
		"statementStatusUrl": "/api/v2/statements/" + h, "message": "Statement executed successfully.",
		"createdOn": time.Now().UnixMilli(),
	}
}

func failure(code, sqlState, msg string) map[string]any {
	return map[string]any{"code": code, "message": msg, "sqlState": sqlState, "statementHandle": newHandle()}
}

// execute runs a statement as u: the HTTP status and the answer.
func (s *Server) execute(u *user, stmt string) (int, map[string]any) {
	p, err := parse(stmt)
	if err != nil {
		q := stmt
		if len(q) > 120 {
			q = q[:120]
		}
		return http.StatusUnprocessableEntity, failure("001003", "42000", "SQL compilation error:\nsyntax error line 1 at position 0 unexpected '"+q+"'.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.kind == "select1" {
		return http.StatusOK, result([]string{"1"}, [][]any{{"1"}})
	}
	t := s.users[p.user]
	self := t != nil && t == u
	if t == nil || (!u.admin && !self && p.kind == "desc") {
		return http.StatusUnprocessableEntity, failure("002003", "02000", "SQL compilation error:\nUser '"+p.user+"' does not exist or not authorized.")
	}
	if !u.admin && !self {
		return http.StatusUnprocessableEntity, failure("003001", "42501", "SQL access control error:\nInsufficient privileges to operate on user '"+p.user+"'")
	}
	slot := 0
	if p.slot == Slot2 {
		slot = 1
	}
	switch p.kind {
	case "desc":
		val := func(k *rsa.PublicKey) (string, string) {
			if k == nil {
				return "null", "null"
			}
			der, _ := x509.MarshalPKIXPublicKey(k)
			return base64.StdEncoding.EncodeToString(der), fingerprint(k)
		}
		k1, fp1 := val(t.keys[0])
		k2, fp2 := val(t.keys[1])
		row := func(p, v, d, desc string) []any { return []any{p, v, d, desc} }
		return http.StatusOK, result([]string{"property", "value", "default", "description"}, [][]any{
			row("NAME", t.name, "null", "Name"),
			row("LOGIN_NAME", strings.ToUpper(t.name), "null", "Login name of the user"),
			row("DISABLED", fmt.Sprint(t.disabled), "false", "Whether the user is disabled"),
			row("TYPE", "SERVICE", "null", "Type of the user"),
			row("RSA_PUBLIC_KEY", k1, "null", "RSA public key of the user"),
			row("RSA_PUBLIC_KEY_FP", fp1, "null", "Fingerprint of user's RSA public key."),
			row("RSA_PUBLIC_KEY_2", k2, "null", "Second RSA public key of the user"),
			row("RSA_PUBLIC_KEY_2_FP", fp2, "null", "Fingerprint of user's second RSA public key."),
		})
	case "set":
		der, err := base64.StdEncoding.DecodeString(p.literal)
		var pub *rsa.PublicKey
		if err == nil {
			if k, err := x509.ParsePKIXPublicKey(der); err == nil {
				pub, _ = k.(*rsa.PublicKey)
			}
		}
		if pub == nil || pub.N.BitLen() < 2048 {
			return http.StatusUnprocessableEntity, failure("002028", "22023", "Invalid public key: it is not a base64 DER RSA public key of 2048 bits or more.")
		}
		t.keys[slot] = pub
		s.history = append(s.history, Applied{At: s.now(), By: u.name, Statement: stmt, User: t.name, Slot: p.slot, Op: "SET", Fingerprint: fingerprint(pub)})
	case "unset":
		fp := fingerprint(t.keys[slot])
		t.keys[slot] = nil
		s.history = append(s.history, Applied{At: s.now(), By: u.name, Statement: stmt, User: t.name, Slot: p.slot, Op: "UNSET", Fingerprint: fp})
	}
	return http.StatusOK, result([]string{"status"}, [][]any{{"Statement executed successfully."}})
}
