// The contract test checks every request the adapter sends against
// Felt's OpenAPI document (testdata/felt/openapi.json) with kin-openapi's openapi3filter.

package felt

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/credsync/credsync/internal/golden"
	"github.com/credsync/credsync/internal/openapitest"
)

// feltRouter is the router of testdata/felt/openapi.json.
func feltRouter(t *testing.T) routers.Router {
	t.Helper()
	return openapitest.Router(t, filepath.Join(golden.Root(t), "testdata", "felt", "openapi.json"))
}

// contractOptions accept any bearer token: its value is the fake's concern.
var contractOptions = openapitest.Options

// asFeltRequest rebuilds a recorded request as sent to the spec's server (https://felt.com).
func asFeltRequest(t *testing.T, rec golden.Request) *http.Request {
	t.Helper()
	var body io.Reader
	if len(rec.Body) > 0 {
		body = bytes.NewReader(rec.Body)
	}
	req, err := http.NewRequest(rec.Method, "https://felt.com"+rec.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = rec.Header.Clone()
	return req
}

func validateRequest(t *testing.T, router routers.Router, req *http.Request) (*openapi3filter.RequestValidationInput, error) {
	t.Helper()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no route in the spec: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: contractOptions}
	return in, openapi3filter.ValidateRequest(context.Background(), in)
}

func TestContractGoldenRequests(t *testing.T) {
	router := feltRouter(t)
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			reqs, update := runGoldenCase(t, c)
			for _, r := range reqs {
				if _, err := validateRequest(t, router, asFeltRequest(t, r)); err != nil {
					t.Errorf("golden request %s %s does not match Felt's spec: %v", r.Method, r.Path, err)
				}
			}
			rec := reqs[update]

			// Negative: the same request with one field the spec does not allow fails.
			var body map[string]any
			if err := json.Unmarshal(rec.Body, &body); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"credential", "connection"} {
				if inner, ok := body[k].(map[string]any); ok {
					inner["unexpected_field"] = "x"
				}
			}
			bad := rec
			bad.Body, _ = json.Marshal(body)
			if _, err := validateRequest(t, router, asFeltRequest(t, bad)); err == nil {
				t.Errorf("a request with an unknown field passed validation: %s", bad.Body)
			}
		})
	}
}

func TestContractNegativeCases(t *testing.T) {
	router := feltRouter(t)
	bodies := map[string]string{
		"/api/v2/sources/s/update":               `{"connection":{"type":"postgresql","token":"x"}}`,
		"/api/v2/sources/s/credentials/c/update": `{"credential":{"type":"databricks_pat","token":"x"}}`,
	}
	for path, body := range bodies {
		rec := golden.Request{Method: "POST", Path: path, Body: []byte(body),
			Header: http.Header{"Authorization": {"Bearer t"}, "Content-Type": {"application/json"}}}
		if _, err := validateRequest(t, router, asFeltRequest(t, rec)); err == nil {
			t.Errorf("%s %s passed validation", path, body)
		}
	}
}

// checkContractResponse validates an answer of the fake to method path against the spec.
func checkContractResponse(t *testing.T, router routers.Router, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://felt.com"+path, nil)
	req.Header.Set("Authorization", "Bearer x")
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: contractOptions},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s %d answer does not match the spec: %v\n%s", method, path, resp.StatusCode, err, body)
	}
}
