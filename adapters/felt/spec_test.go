package felt

import (
	"encoding/json"
	"testing"

	"github.com/credsync/credsync/adapters/felt/feltfake"
)

// Felt's operations with a body, as paths of its spec.
const (
	specUpdate     = "/api/v2/sources/{source_id}/update"
	specCredUpdate = "/api/v2/sources/{source_id}/credentials/{credential_id}/update"
)

// Every golden request, replayed, passes the fake's validator (its own reading of Felt's spec;
// the kin-openapi contract test in contract_test.go checks them independently).
func TestGoldenRequestsMatchSpec(t *testing.T) {
	for _, c := range goldenCases {
		reqs, update := runGoldenCase(t, c)
		for i, req := range reqs {
			if i != update {
				// The reads and Sync Source have no body.
				if len(req.Body) != 0 || req.Header.Get("Content-Type") != "" {
					t.Errorf("%s: %s %s sent a body: %s", c.name, req.Method, req.Path, req.Body)
				}
				continue
			}
			specPath := specUpdate
			if c.feltType != "" {
				specPath = specCredUpdate
			}
			if errs := feltfake.CheckRequestBody(specPath, req.Body); len(errs) > 0 {
				t.Errorf("%s: %v", c.name, errs)
			}
			// Negative: one field the spec does not allow makes the same body fail.
			var obj map[string]any
			if err := json.Unmarshal(req.Body, &obj); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"credential", "connection"} {
				if inner, ok := obj[k].(map[string]any); ok {
					inner["unexpected_field"] = "x"
				}
			}
			bad, _ := json.Marshal(obj)
			if errs := feltfake.CheckRequestBody(specPath, bad); len(errs) == 0 {
				t.Errorf("%s: a body with an unknown field passed validation", c.name)
			}
		}
	}
}
