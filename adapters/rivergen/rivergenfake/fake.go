package rivergenfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/adapters/fakeutil"
)

// Credentials is what the fake RiverGen stores for one data source. Only the fields an update
// carried change; the rest keep their previous value.
type Credentials struct {
	Username      string
	Password      string
	APIKey        string
	OAuthToken    string
	SSHPrivateKey string
	SSHPassphrase string
	// Updates counts the credential updates the data source accepted.
	Updates int
	// Rotations counts the updates that carried "rotate_credentials": true.
	Rotations int
	// UpdatedAt is when the last update was accepted (zero before any).
	UpdatedAt time.Time
}

// ConnectionResult is what the fake's Test Connection answers for one data source.
type ConnectionResult struct {
	OK           bool
	ErrorCode    string // e.g. AUTHENTICATION_FAILED, used when !OK
	ErrorMessage string
}

type fakeSource struct {
	creds Credentials
	conn  ConnectionResult
	tests int
	// dbPassword, when set, is the password the database behind the data source takes: Test
	// Connection then succeeds only when the stored password is that one.
	dbPassword string
}

// Server is an in-memory RiverGen serving the two endpoints credsync uses:
//
//	PATCH /api/v1/data-sources/{data_source_id}/credentials
//	POST  /api/v1/data-sources/{data_source_id}/test
//
// It is as strict as the vendor doc allows: a wrong or missing bearer token gets 401 UNAUTHORIZED,
// a token whose user belongs to no organization 403 FORBIDDEN, an unknown data source 404
// NOT_FOUND, a body that is not JSON or not sent as application/json 400 BAD_REQUEST, and an
// unknown field or a wrong JSON type 422 VALIDATION_ERROR. Every error uses the envelope
// {"success": false, "error": {"code", "message", "details"?}, "message"}. It is safe for
// concurrent use.
//
// Seeding: AddDataSource, SetCredentials, SetConnectionResult / SetConnectionOK,
// SetOrganizationMember. Inspection: Credentials, TestCount, plus the embedded Base's Requests,
// Reset and SetFault.
type Server struct {
	*fakeutil.Base

	mu      sync.Mutex
	sources map[int]*fakeSource
	member  bool
	now     func() time.Time
}

// New returns a fake RiverGen that accepts only the given bearer token. It holds no data
// source until AddDataSource; the token's user is a member of an organization.
func New(token string) *Server {
	return &Server{
		Base:    fakeutil.NewBase(token),
		sources: map[int]*fakeSource{},
		member:  true,
		now:     func() time.Time { return time.Now().UTC() },
	}
}

// AddDataSource creates data source id with empty credentials whose Test Connection succeeds.
// Adding an existing id resets it.
func (f *Server) AddDataSource(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sources[id] = &fakeSource{conn: ConnectionResult{OK: true}}
}

// SetCredentials replaces the stored credentials of data source id (creating it if needed), to
// seed the "before" state of a partial update.
func (f *Server) SetCredentials(id int, c Credentials) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.source(id).creds = c
}

// Credentials returns what data source id now stores, and whether it exists.
func (f *Server) Credentials(id int) (Credentials, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sources[id]
	if !ok {
		return Credentials{}, false
	}
	return s.creds, true
}

// SetConnectionOK sets what Test Connection answers for data source id (creating it if
// needed): ok, or a failure with RiverGen's error_code and error_message.
func (f *Server) SetConnectionOK(id int, ok bool, errorCode, errorMessage string) {
	f.SetConnectionResult(id, ConnectionResult{OK: ok, ErrorCode: errorCode, ErrorMessage: errorMessage})
}

// SetConnectionResult is SetConnectionOK with a struct.
func (f *Server) SetConnectionResult(id int, r ConnectionResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.source(id).conn = r
}

// SetDatabasePassword makes data source id's database take only pw (creating the data source
// if needed): from then on Test Connection logs in with the password RiverGen stores and
// answers AUTHENTICATION_FAILED when it is another one, as a real database would. "" goes
// back to SetConnectionResult's answer.
func (f *Server) SetDatabasePassword(id int, pw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.source(id).dbPassword = pw
}

// TestCount returns how many Test Connection calls data source id answered.
func (f *Server) TestCount(id int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sources[id]; ok {
		return s.tests
	}
	return 0
}

// SetOrganizationMember sets whether the token's user belongs to an organization. With false,
// every authenticated request gets 403 FORBIDDEN ("User is not a member of any organization").
func (f *Server) SetOrganizationMember(member bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.member = member
}

// source returns data source id, creating it; f.mu must be held.
func (f *Server) source(id int) *fakeSource {
	s, ok := f.sources[id]
	if !ok {
		s = &fakeSource{conn: ConnectionResult{OK: true}}
		f.sources[id] = s
	}
	return s
}

// fieldError is one entry of a validation error's details.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string, details []fieldError) {
	e := map[string]any{"code": code, "message": message}
	if len(details) > 0 {
		e["details"] = details
	}
	fakeutil.WriteJSON(w, status, map[string]any{"success": false, "error": e, "message": message})
}

const apiPrefix = "/api/v1/data-sources/"

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := f.Begin(w, r)
	if !ok {
		return
	}
	if !f.Authorized(r) {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or missing authentication token", nil)
		return
	}
	f.mu.Lock()
	member := f.member
	f.mu.Unlock()
	if !member {
		writeError(w, http.StatusForbidden, "FORBIDDEN", "User is not a member of any organization", nil)
		return
	}

	rest, found := strings.CutPrefix(r.URL.Path, apiPrefix)
	idText, action, _ := strings.Cut(rest, "/")
	if !found || idText == "" || (action != "credentials" && action != "test") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Endpoint not found", nil)
		return
	}
	want := http.MethodPatch
	if action == "test" {
		want = http.MethodPost
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method "+r.Method+" not allowed", nil)
		return
	}
	id, err := strconv.Atoi(idText)
	if err != nil || strconv.Itoa(id) != idText {
		writeError(w, http.StatusUnprocessableEntity, "VALIDATION_ERROR", "Invalid request parameters",
			[]fieldError{{Field: "data_source_id", Message: "must be an integer"}})
		return
	}
	f.mu.Lock()
	_, exists := f.sources[id]
	f.mu.Unlock()
	if !exists {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Data source not found", nil)
		return
	}

	if action == "credentials" {
		f.updateCredentials(w, r, id, body)
	} else {
		f.testConnection(w, r, id, body)
	}
}

// credentialFields are the fields of the update body and whether each is a string (else a boolean).
var credentialFields = map[string]bool{
	"username": true, "password": true, "api_key": true, "oauth_token": true,
	"ssh_private_key": true, "ssh_passphrase": true, "rotate_credentials": false,
}

func (f *Server) updateCredentials(w http.ResponseWriter, r *http.Request, id int, body []byte) {
	obj, ok := decodeObject(w, r, body, true)
	if !ok {
		return
	}
	var details []fieldError
	strs := map[string]string{}
	rotate := false
	for _, k := range sortedKeys(obj) {
		isString, known := credentialFields[k]
		switch {
		case !known:
			details = append(details, fieldError{Field: k, Message: "extra fields not permitted"})
		case isString:
			var s *string
			if json.Unmarshal(obj[k], &s) != nil || s == nil {
				details = append(details, fieldError{Field: k, Message: "must be a string"})
				continue
			}
			strs[k] = *s
		default:
			var b *bool
			if json.Unmarshal(obj[k], &b) != nil || b == nil {
				details = append(details, fieldError{Field: k, Message: "must be a boolean"})
				continue
			}
			rotate = *b
		}
	}
	if len(details) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "VALIDATION_ERROR", "Invalid request body", details)
		return
	}

	now := f.now()
	f.mu.Lock()
	s, exists := f.sources[id]
	if !exists { // removed meanwhile: cannot happen today, but keep the answer honest
		f.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Data source not found", nil)
		return
	}
	c := &s.creds
	for k, v := range strs {
		switch k {
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "api_key":
			c.APIKey = v
		case "oauth_token":
			c.OAuthToken = v
		case "ssh_private_key":
			c.SSHPrivateKey = v
		case "ssh_passphrase":
			c.SSHPassphrase = v
		}
	}
	c.Updates++
	if rotate {
		c.Rotations++
	}
	c.UpdatedAt = now
	f.mu.Unlock()

	fakeutil.WriteJSON(w, http.StatusOK, map[string]any{
		"success": true,
		"data": map[string]any{
			"data_source_id":         id,
			"credentials_updated_at": now.Format(time.RFC3339),
		},
		"message": "Credentials updated successfully",
	})
}

func (f *Server) testConnection(w http.ResponseWriter, r *http.Request, id int, body []byte) {
	// The body is optional: an empty one means RiverGen's default test.
	var details []fieldError
	if len(bytes.TrimSpace(body)) > 0 {
		obj, ok := decodeObject(w, r, body, false)
		if !ok {
			return
		}
		for _, k := range sortedKeys(obj) {
			switch k {
			case "test_query":
				var s *string
				if json.Unmarshal(obj[k], &s) != nil || s == nil {
					details = append(details, fieldError{Field: k, Message: "must be a string"})
				}
			case "timeout_seconds":
				var n *int
				if json.Unmarshal(obj[k], &n) != nil || n == nil {
					details = append(details, fieldError{Field: k, Message: "must be an integer"})
				} else if *n <= 0 {
					details = append(details, fieldError{Field: k, Message: "must be greater than 0"})
				}
			default:
				details = append(details, fieldError{Field: k, Message: "extra fields not permitted"})
			}
		}
	}
	if len(details) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "VALIDATION_ERROR", "Invalid request body", details)
		return
	}

	f.mu.Lock()
	s := f.source(id)
	s.tests++
	res := s.conn
	if s.dbPassword != "" {
		res = ConnectionResult{OK: true}
		if s.creds.Password != s.dbPassword {
			res = ConnectionResult{ErrorCode: "AUTHENTICATION_FAILED", ErrorMessage: "password authentication failed for user \"" + s.creds.Username + "\""}
		}
	}
	f.mu.Unlock()

	data := map[string]any{
		"data_source_id":        id,
		"connection_successful": res.OK,
		"response_time_ms":      12,
		"tested_at":             f.now().Format(time.RFC3339),
		"error_code":            nil,
		"error_message":         nil,
	}
	msg := "Connection successful"
	if !res.OK {
		data["error_code"] = res.ErrorCode
		data["error_message"] = res.ErrorMessage
		msg = "Connection failed"
	}
	// RiverGen answers 200 whether or not it could connect.
	fakeutil.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "data": data, "message": msg})
}

// decodeObject checks the Content-Type and parses the body as one JSON object. It answers the
// error itself and returns false when the body is refused. required says whether an empty body
// is refused.
func decodeObject(w http.ResponseWriter, r *http.Request, body []byte, required bool) (map[string]json.RawMessage, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "Content-Type must be application/json", nil)
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "Request body is required", nil)
			return nil, false
		}
		return map[string]json.RawMessage{}, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil || dec.More() {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "Request body is not valid JSON", nil)
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		writeError(w, http.StatusUnprocessableEntity, "VALIDATION_ERROR", "Invalid request body",
			[]fieldError{{Field: "body", Message: fmt.Sprintf("must be a JSON object, got %s", jsonKindOf(raw))}})
		return nil, false
	}
	return obj, true
}

func jsonKindOf(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '[':
		return "an array"
	case t[0] == '"':
		return "a string"
	case bytes.Equal(t, []byte("null")):
		return "null"
	case bytes.Equal(t, []byte("true")), bytes.Equal(t, []byte("false")):
		return "a boolean"
	default:
		return "a number"
	}
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
