package feltfake

import "sort"

// What the fake needs for credsync check: Show Source's connection lists the source's credentials
// (SourceConnection-*.credentials in Felt's spec) for the connection types whose schema has that
// list. fake.go's showSource adds listedCredentials to the connection it shows.

// listedCredentials returns the credentials Show Source lists in src's connection, or nil when
// the connection type's schema has no credentials list. A credential that schema cannot hold
// (the fake's AddCredential takes any type on any source; Felt does not) is left out, so the
// answer stays valid against the spec. Call with f.mu held.
func (f *Server) listedCredentials(src *fakeSource) []any {
	item := f.spec.connectionCredentialsItem(src.connectionType)
	if item == nil {
		return nil
	}
	ids := make([]string, 0, len(src.credentials))
	for id := range src.credentials {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := []any{}
	for _, id := range ids {
		entry := sourceCredential(src.id, src.credentials[id])
		v := cloneMap(entry) // JSON-shaped (numbers as json.Number), as validate expects
		if v == nil || len(f.spec.validate(item, v, "")) > 0 {
			continue
		}
		out = append(out, entry)
	}
	return out
}

// connectionCredentialsItem returns the schema of one entry of SourceConnection-<type>.credentials,
// or nil when that connection variant has no credentials list.
func (s *spec) connectionCredentialsItem(connectionType string) map[string]any {
	src := s.schema("Source")
	props, _ := src["properties"].(map[string]any)
	conn, _ := props["connection"].(map[string]any)
	one, _ := conn["oneOf"].([]any)
	for _, b := range one {
		bm, _ := b.(map[string]any)
		bs := s.resolve(bm)
		bp, _ := bs["properties"].(map[string]any)
		tp, _ := bp["type"].(map[string]any)
		enum, _ := tp["enum"].([]any)
		if !inEnum(enum, connectionType) {
			continue
		}
		list, _ := bp["credentials"].(map[string]any)
		item, _ := s.resolve(list)["items"].(map[string]any)
		return item
	}
	return nil
}
