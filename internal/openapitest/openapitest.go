// Package openapitest loads an OpenAPI document for contract tests (kin-openapi's router and
// validation options), so that the tests of an adapter and of its fake check requests and
// answers against the same document the same way. It is for tests only.
package openapitest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Router loads the document at path, validates it and returns its router.
func Router(t *testing.T, path string) routers.Router {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("load spec %s: %v", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("spec %s is not valid OpenAPI: %v", path, err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router of %s: %v", path, err)
	}
	return r
}

// Options validate every problem at once and accept any bearer token as the document's
// authentication (the token's value is the fake's concern, not the document's).
var Options = &openapi3filter.Options{
	MultiError: true,
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
			return in.NewError(nil)
		}
		return nil
	},
}
