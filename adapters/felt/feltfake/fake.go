package feltfake

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/adapters/fakeutil"
)

// Server is an in-memory Felt Sources API for tests and the demo. It serves
//
//	GET  /api/v2/sources/{source_id}                                  Show Source (200 Source)
//	POST /api/v2/sources/{source_id}/update                           Update Source (202 SourceReference)
//	POST /api/v2/sources/{source_id}/sync                             Sync Source (202 SourceReference)
//	POST /api/v2/sources/{source_id}/credentials/{credential_id}/update  Update Source Credential (202 SourceCredential)
//
// and is as strict as the real API: a missing or wrong bearer token gets 401 UnauthorizedError; an
// unknown source or credential gets 404 NotFoundError; a body that is not application/json, not
// JSON, or not valid against Felt's OpenAPI schema of the operation (unknown field, wrong type,
// wrong enum) gets 422 JsonErrorResponse, as does a credential whose type differs from the stored
// credential's or a connection whose type differs from the source's. Sync Source documents no
// body: the fake refuses one with 422. It stores what it receives, so a test can read back the
// credential Felt now holds.
//
// # Syncs
//
// Felt connects to a source asynchronously, as a job, after Update Source ("Connecting the Source
// ... will happen asynchronously") and after Sync Source; Felt documents no sync after Update
// Source Credential, so that call alone starts none. The fake models the job as Show Source
// shows it:
//
//   - queued: for the next SetStalePolls answers (default 1) the job has not started, and
//     sync_status and last_synced_at keep their values from before the request: a "completed"
//     seen then is the previous sync's, not this one's;
//   - running: then sync_status is "syncing" for SetSyncingPolls answers (default 1);
//   - done: then the outcome set by SetSyncOutcome ("completed" by default), with last_synced_at
//     set to a new value (milliseconds), strictly greater than any the fake gave before.
//
// A request while a job is queued joins it; a request while one runs queues another to run after
// it (it starts at once, without stale answers). Only Show Source answers move a job on.
//
// Seed it with AddSource and AddCredential before use. It is safe for concurrent use.
type Server struct {
	*fakeutil.Base
	spec *spec

	mu           sync.Mutex
	sources      map[string]*fakeSource
	stalePolls   int
	syncingPolls int
	lastStamp    int64 // the latest last_synced_at given, so that each is greater
}

type fakeSource struct {
	id             string
	connectionType string
	name           string
	connection     map[string]any // the connection parameters as last received, secrets in clear
	permissions    any
	credentials    map[string]*fakeCredential
	syncStatus     string
	outcome        string
	job            *syncJob // the sync asked for and not finished; nil: none
	another        bool     // a sync was asked for while job ran: one more follows it
	syncs          int      // syncs finished
	createdAt      int64
	updatedAt      int64
	lastSyncedAt   *int64
}

// syncJob is one sync Felt was asked for.
type syncJob struct {
	stale   int // Show Source answers left before it starts
	syncing int // answers left that say "syncing" once it started
	started bool
}

type fakeCredential struct {
	id        string
	feltType  string
	name      string
	useCase   string
	fields    map[string]any // everything but "type", secrets in clear
	createdAt int64
	updatedAt int64
}

// Credential is a source credential as the fake holds it.
type Credential struct {
	ID       string
	SourceID string
	Type     string         // the Felt credential type, e.g. "key_pair"
	Fields   map[string]any // the credential's fields in clear, as last received (without "type")
}

// Redacted is what Felt returns in place of a sensitive credential field.
const Redacted = "felt:redacted"

// New returns a fake Felt that accepts only the given API token.
func New(token string) *Server {
	return &Server{Base: fakeutil.NewBase(token), spec: mustSpec(), sources: map[string]*fakeSource{}, stalePolls: 1, syncingPolls: 1}
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// syncStamp returns a new last_synced_at: now in milliseconds, and greater than every one given
// before, even within one millisecond. Call with f.mu held.
func (f *Server) syncStamp() int64 {
	now := nowMillis()
	if now <= f.lastStamp {
		now = f.lastStamp + 1
	}
	f.lastStamp = now
	return now
}

// AddSource creates (or resets) a source of the given Felt connection type (postgresql, snowflake,
// bigquery, ...; any of SourceReference.connection_type). It starts synced: sync_status
// "completed" with a last_synced_at. It panics on a connection type Felt does not have.
func (f *Server) AddSource(id, connectionType string) {
	if !f.knownConnectionType(connectionType) {
		panic(fmt.Sprintf("felt fake: unknown connection type %q", connectionType))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.syncStamp()
	f.sources[id] = &fakeSource{
		id: id, connectionType: connectionType, name: "Source " + id,
		connection:  map[string]any{"type": connectionType},
		permissions: map[string]any{"type": "workspace_editors"},
		credentials: map[string]*fakeCredential{},
		syncStatus:  "completed", outcome: "completed",
		createdAt: now, updatedAt: now, lastSyncedAt: &now,
	}
}

// seedFields are placeholder values of a seeded credential, so that it is complete as Felt's
// SourceCredential-* schemas require.
var seedFields = map[string]map[string]any{
	"aws_assume_role":                 {"role_arn": "arn:aws:iam::000000000000:role/seeded", "role_session_name": "felt-seeded"},
	"azure_storage_connection_string": {"connection_string": "seeded-connection-string"},
	"custom_headers":                  {"headers": []any{map[string]any{"name": "X-Seeded", "value": "seeded", "sensitive": true}}},
	"gcp_service_account_json":        {"service_account_json": map[string]any{"type": "service_account"}, "service_account_filename": "seeded.json"},
	"key_pair":                        {"private_key": "seeded-private-key", "private_key_name": "seeded-key"},
	"snowflake_pat":                   {"token": "seeded-token"},
	"databricks_pat":                  {"token": "seeded-token"},
	"oauth_m2m":                       {"client_id": "seeded-client", "client_secret": "seeded-secret"},
}

// AddCredential adds a credential of the given Felt type (key_pair, snowflake_pat,
// gcp_service_account_json, aws_assume_role, azure_storage_connection_string, custom_headers,
// databricks_pat, oauth_m2m) to a source added before, with placeholder values. It panics on an
// unknown source or type.
func (f *Server) AddCredential(sourceID, credentialID, feltType string) {
	seed, ok := seedFields[feltType]
	if !ok {
		panic(fmt.Sprintf("felt fake: unknown credential type %q", feltType))
	}
	now := nowMillis()
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		panic(fmt.Sprintf("felt fake: AddCredential on unknown source %q (call AddSource first)", sourceID))
	}
	fields := map[string]any{}
	for k, v := range seed {
		fields[k] = v
	}
	src.credentials[credentialID] = &fakeCredential{id: credentialID, feltType: feltType, name: "Credential " + credentialID,
		useCase: "source_authentication", fields: fields, createdAt: now, updatedAt: now}
}

// SetSyncOutcome sets what the source's syncs end with: "completed" (the credential works) or
// "failed" (Felt could not connect). It also applies to a sync already queued or running. It
// panics on an unknown source or outcome.
func (f *Server) SetSyncOutcome(sourceID, outcome string) {
	if outcome != "completed" && outcome != "failed" {
		panic(fmt.Sprintf("felt fake: sync outcome must be completed or failed, not %q", outcome))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		panic(fmt.Sprintf("felt fake: SetSyncOutcome on unknown source %q", sourceID))
	}
	src.outcome = outcome
}

// SetStalePolls sets how many Show Source answers, after a sync is asked for, still show the
// sync_status and last_synced_at from before (the job has not started yet; default 1, 0: it
// starts at the first answer). It applies to the syncs asked for afterwards.
func (f *Server) SetStalePolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stalePolls = max(n, 0)
}

// SetSyncingPolls sets how many Show Source answers say "syncing" once a sync has started,
// before its outcome shows (default 1; 0 shows the outcome at once). It applies to the syncs
// asked for afterwards.
func (f *Server) SetSyncingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncingPolls = max(n, 0)
}

// StartSync starts a sync of the source as Sync Source does, without a request (for a test that
// needs a sync already under way). It panics on an unknown source.
func (f *Server) StartSync(sourceID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		panic(fmt.Sprintf("felt fake: StartSync on unknown source %q", sourceID))
	}
	f.requestSync(src)
}

// Syncs returns how many syncs of the source have finished (whatever their outcome).
func (f *Server) Syncs(sourceID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if src, ok := f.sources[sourceID]; ok {
		return src.syncs
	}
	return 0
}

// LastSyncedAt returns the source's last_synced_at as Show Source would now show it, without
// counting as an answer; ok is false for an unknown source or one that never synced.
func (f *Server) LastSyncedAt(sourceID string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if src, ok := f.sources[sourceID]; ok && src.lastSyncedAt != nil {
		return *src.lastSyncedAt, true
	}
	return 0, false
}

// Connection returns the source's connection parameters as Felt now holds them (the last values
// received, secrets in clear, "type" included).
func (f *Server) Connection(sourceID string) (map[string]any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		return nil, false
	}
	return cloneMap(src.connection), true
}

// Credential returns a source credential as Felt now holds it, secrets in clear.
func (f *Server) Credential(sourceID, credentialID string) (Credential, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		return Credential{}, false
	}
	c, ok := src.credentials[credentialID]
	if !ok {
		return Credential{}, false
	}
	return Credential{ID: c.id, SourceID: sourceID, Type: c.feltType, Fields: cloneMap(c.fields)}, true
}

// SyncStatus returns the source's sync_status as Show Source would now show it, without counting
// as an answer.
func (f *Server) SyncStatus(sourceID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if src, ok := f.sources[sourceID]; ok {
		return src.syncStatus
	}
	return ""
}

// ErrorFault returns a fault hook (for SetFault) that answers the next n requests (n <= 0: every
// request) with status and Felt's error body for it, plus a Retry-After header when retryAfter is
// not empty. Later requests reach the fake as usual.
func ErrorFault(status int, retryAfter string, n int) fakeutil.Fault {
	var mu sync.Mutex
	left := n
	return func(w http.ResponseWriter, _ *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if n > 0 {
			if left == 0 {
				return false
			}
			left--
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		title := http.StatusText(status)
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusUnprocessableEntity:
			fakeutil.WriteJSON(w, status, errorsBody(title, "Too many requests, slow down", map[string]any{"pointer": ""}))
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			fakeutil.WriteJSON(w, status, errorsBody(title, "Access denied", map[string]any{"header": "authorization"}))
		default:
			fakeutil.WriteJSON(w, status, errorsBody(title, "Something went wrong", map[string]any{}))
		}
		return true
	}
}

func errorsBody(title, detail string, source map[string]any) map[string]any {
	return map[string]any{"errors": []any{map[string]any{"title": title, "detail": detail, "source": source}}}
}

func unauthorized(w http.ResponseWriter) {
	fakeutil.WriteJSON(w, http.StatusUnauthorized, errorsBody("Unauthorized", "Invalid or missing API token", map[string]any{"header": "authorization"}))
}

func notFound(w http.ResponseWriter, parameter, detail string) {
	src := map[string]any{}
	if parameter != "" {
		src["parameter"] = parameter
	}
	fakeutil.WriteJSON(w, http.StatusNotFound, errorsBody("Not Found", detail, src))
}

func unprocessable(w http.ResponseWriter, errs []schemaError) {
	list := make([]any, len(errs))
	for i, e := range errs {
		list[i] = map[string]any{"title": "Unprocessable Entity", "detail": e.Detail, "source": map[string]any{"pointer": e.Pointer}}
	}
	fakeutil.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": list})
}

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := f.Begin(w, r)
	if !ok {
		return
	}
	if !f.Authorized(r) {
		unauthorized(w)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v2/sources/")
	if !ok || rest == "" {
		notFound(w, "", "No route for "+r.Method+" "+r.URL.Path)
		return
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			notFound(w, "", "No route for "+r.Method+" "+r.URL.Path)
			return
		}
		segs[i] = u
	}
	switch {
	case len(segs) == 1 && r.Method == http.MethodGet:
		f.showSource(w, segs[0])
	case len(segs) == 2 && segs[1] == "update" && r.Method == http.MethodPost:
		f.updateSource(w, r, body, segs[0])
	case len(segs) == 2 && segs[1] == "sync" && r.Method == http.MethodPost:
		f.syncSource(w, body, segs[0])
	case len(segs) == 4 && segs[1] == "credentials" && segs[3] == "update" && r.Method == http.MethodPost:
		f.updateCredential(w, r, body, segs[0], segs[2])
	default:
		notFound(w, "", "No route for "+r.Method+" "+r.URL.Path)
	}
}

// readBody checks the Content-Type, parses the JSON and validates it against the operation's
// schema. It answers 422 itself and returns ok false on any problem. An empty body is {} (the
// spec makes the body optional).
func (f *Server) readBody(w http.ResponseWriter, r *http.Request, body []byte, specPath string) (map[string]any, bool) {
	if strings.TrimSpace(string(body)) == "" {
		return map[string]any{}, true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		unprocessable(w, []schemaError{{"", fmt.Sprintf("Unsupported Content-Type %q: the body must be application/json", r.Header.Get("Content-Type"))}})
		return nil, false
	}
	v, err := decodeJSON(body)
	if err != nil {
		unprocessable(w, []schemaError{{"", "Invalid JSON body"}})
		return nil, false
	}
	if errs := f.spec.validate(f.spec.requestSchema(specPath, "post"), v, ""); len(errs) > 0 {
		unprocessable(w, errs)
		return nil, false
	}
	obj, _ := v.(map[string]any)
	return obj, true
}

func (f *Server) updateSource(w http.ResponseWriter, r *http.Request, body []byte, sourceID string) {
	params, ok := f.readBody(w, r, body, "/api/v2/sources/{source_id}/update")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		notFound(w, "source_id", "Source not found")
		return
	}
	if conn, ok := params["connection"].(map[string]any); ok {
		if conn["type"] != src.connectionType {
			unprocessable(w, []schemaError{{"/connection/type", fmt.Sprintf("does not match the source's connection type %s", src.connectionType)}})
			return
		}
		for k, v := range conn {
			src.connection[k] = v
		}
	}
	if name, ok := params["name"].(string); ok {
		src.name = name
	}
	if p, ok := params["permissions"]; ok {
		src.permissions = p
	}
	src.updatedAt = nowMillis()
	f.requestSync(src) // "Connecting the Source ... will happen asynchronously"
	fakeutil.WriteJSON(w, http.StatusAccepted, f.sourceReference(src))
}

// syncSource is Sync Source: it asks for a sync and answers with the source as it is now (the
// sync has not started yet).
func (f *Server) syncSource(w http.ResponseWriter, body []byte, sourceID string) {
	if strings.TrimSpace(string(body)) != "" {
		unprocessable(w, []schemaError{{"", "Sync Source takes no request body"}})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		notFound(w, "source_id", "Source not found")
		return
	}
	f.requestSync(src)
	fakeutil.WriteJSON(w, http.StatusAccepted, f.sourceReference(src))
}

func (f *Server) updateCredential(w http.ResponseWriter, r *http.Request, body []byte, sourceID, credentialID string) {
	params, ok := f.readBody(w, r, body, "/api/v2/sources/{source_id}/credentials/{credential_id}/update")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		notFound(w, "source_id", "Source not found")
		return
	}
	cred, ok := src.credentials[credentialID]
	if !ok {
		notFound(w, "credential_id", "Source credential not found")
		return
	}
	if c, ok := params["credential"].(map[string]any); ok {
		if c["type"] != cred.feltType {
			unprocessable(w, []schemaError{{"/credential/type", fmt.Sprintf("does not match the credential's type %s", cred.feltType)}})
			return
		}
		for k, v := range c {
			if k != "type" {
				cred.fields[k] = v
			}
		}
	}
	if name, ok := params["name"].(string); ok {
		cred.name = name
	}
	if uc, ok := params["use_case"].(string); ok {
		cred.useCase = uc
	}
	cred.updatedAt = nowMillis()
	// Felt documents no sync after a credential update: none starts (Sync Source starts one).
	fakeutil.WriteJSON(w, http.StatusAccepted, sourceCredential(src.id, cred))
}

// requestSync asks for a sync of src: a new job, unless one is queued (the request joins it) or
// running (another follows it). Call with f.mu held.
func (f *Server) requestSync(src *fakeSource) {
	switch {
	case src.job == nil:
		src.job = &syncJob{stale: f.stalePolls, syncing: f.syncingPolls}
	case src.job.started:
		src.another = true
	}
}

// advanceSync moves src's job on by one Show Source answer. Call with f.mu held.
func (f *Server) advanceSync(src *fakeSource) {
	j := src.job
	if j == nil {
		return
	}
	if !j.started {
		if j.stale > 0 {
			j.stale-- // not started: Show Source still shows the previous sync
			return
		}
		j.started = true
	}
	if j.syncing > 0 {
		j.syncing--
		src.syncStatus = "syncing"
		return
	}
	src.syncStatus = src.outcome
	stamp := f.syncStamp()
	src.lastSyncedAt = &stamp
	src.syncs++
	src.job = nil
	if src.another {
		src.another = false
		src.job = &syncJob{started: true, syncing: f.syncingPolls}
	}
}

func (f *Server) showSource(w http.ResponseWriter, sourceID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[sourceID]
	if !ok {
		notFound(w, "source_id", "Source not found")
		return
	}
	f.advanceSync(src)
	var conn any
	if allowed := f.spec.connectionShowFields(src.connectionType); allowed != nil {
		shown := map[string]any{}
		for k, v := range src.connection {
			if allowed[k] {
				shown[k] = v
			}
		}
		if creds := f.listedCredentials(src); creds != nil {
			shown["credentials"] = creds
		}
		conn = shown
	}
	fakeutil.WriteJSON(w, http.StatusOK, map[string]any{
		"type":           "source",
		"id":             src.id,
		"name":           src.name,
		"connection":     conn,
		"sync_status":    src.syncStatus,
		"automatic_sync": "enabled",
		"datasets":       []any{},
		"permissions":    src.permissions,
		"created_at":     src.createdAt,
		"updated_at":     src.updatedAt,
		"last_synced_at": src.lastSyncedAt,
		"owner_id":       "usr_fake_owner",
		"workspace_id":   "wsp_fake_workspace",
	})
}

func (f *Server) sourceReference(src *fakeSource) map[string]any {
	return map[string]any{
		"type":            "source_reference",
		"id":              src.id,
		"name":            src.name,
		"connection_type": src.connectionType,
		"sync_status":     src.syncStatus,
		"automatic_sync":  "enabled",
		"permissions":     src.permissions,
		"created_at":      src.createdAt,
		"updated_at":      src.updatedAt,
		"last_synced_at":  src.lastSyncedAt,
		"owner_id":        "usr_fake_owner",
		"workspace_id":    "wsp_fake_workspace",
		"links":           map[string]any{"self": "https://felt.com/api/v2/sources/" + url.PathEscape(src.id)},
	}
}

// sensitiveFields are returned as felt:redacted.
var sensitiveFields = map[string]bool{"private_key": true, "private_key_passphrase": true, "token": true,
	"connection_string": true, "service_account_json": true, "client_secret": true}

func sourceCredential(sourceID string, c *fakeCredential) map[string]any {
	shown := map[string]any{"type": c.feltType}
	for k, v := range c.fields {
		switch {
		case sensitiveFields[k]:
			shown[k] = Redacted
		case k == "headers":
			list, _ := v.([]any)
			out := make([]any, 0, len(list))
			for _, h := range list {
				hm, _ := h.(map[string]any)
				hc := cloneMap(hm)
				if s, _ := hc["sensitive"].(bool); s {
					hc["value"] = Redacted
				}
				out = append(out, hc)
			}
			shown[k] = out
		default:
			shown[k] = v
		}
	}
	return map[string]any{
		"id": c.id, "source_id": sourceID, "name": c.name, "use_case": c.useCase,
		"created_at": c.createdAt, "updated_at": c.updatedAt, "credential": shown,
	}
}

func (f *Server) knownConnectionType(ct string) bool {
	ref := f.spec.schema("SourceReference")
	props, _ := ref["properties"].(map[string]any)
	p, _ := props["connection_type"].(map[string]any)
	enum, _ := p["enum"].([]any)
	return inEnum(enum, ct)
}

// cloneMap copies a JSON-like map deeply enough that callers cannot change the fake's state.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	out, err := decodeJSON(b)
	if err != nil {
		return nil
	}
	om, _ := out.(map[string]any)
	return om
}
