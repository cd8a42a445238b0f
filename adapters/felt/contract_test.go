// The contract test checks every request the adapter sends, and the fake's answers, against
// Felt's OpenAPI document (testdata/felt/openapi.json) with kin-openapi's openapi3filter.

package felt

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/credsync/credsync/internal/golden"
)

// feltRouter loads testdata/felt/openapi.json, validates the document and returns its router.
func feltRouter(t *testing.T) routers.Router {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(golden.Root(t), "testdata", "felt", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("spec is not valid OpenAPI: %v", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return r
}

var contractOptions = &openapi3filter.Options{
	MultiError: true,
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
			return in.NewError(nil)
		}
		return nil
	},
}

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

// TestContractFakeAnswers validates what the fake answers against the spec's responses.
func TestContractFakeAnswers(t *testing.T) {
	router := feltRouter(t)
	e := newEnv(t)
	types := []string{"abs_bucket", "bigquery", "databricks", "feature_server", "gcs_bucket", "lightning_server", "mssql",
		"postgresql", "redshift", "s3_bucket", "snowflake", "stac", "wfs", "wherobots", "wms_wmts"}
	for _, ct := range types {
		e.fake.AddSource("s_"+ct, ct)
	}
	for feltType := range seedFields {
		e.fake.AddCredential("s_stac", "c_"+feltType, feltType)
	}
	type exchange struct {
		method, path, token, contentType, body string
		status                                 int
	}
	var ex []exchange
	for _, ct := range types {
		ex = append(ex, exchange{"GET", "/api/v2/sources/s_" + ct, testToken, "", "", 200})
	}
	ex = append(ex,
		exchange{"POST", "/api/v2/sources/s_postgresql/update", testToken, "application/json", `{"connection":{"type":"postgresql","host":"h","port":5432,"password":"p"}}`, 202},
		exchange{"GET", "/api/v2/sources/s_postgresql", testToken, "", "", 200},
		exchange{"GET", "/api/v2/sources/s_postgresql", testToken, "", "", 200},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_key_pair/update", testToken, "application/json", `{"credential":{"type":"key_pair","private_key":"k","private_key_passphrase":"p"}}`, 202},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_snowflake_pat/update", testToken, "application/json", `{"credential":{"type":"snowflake_pat","token":"t"}}`, 202},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_gcp_service_account_json/update", testToken, "application/json", `{"credential":{"type":"gcp_service_account_json","service_account_json":{"a":1}}}`, 202},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_aws_assume_role/update", testToken, "application/json", `{"credential":{"type":"aws_assume_role","role_arn":"r","role_session_name":"s"}}`, 202},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_azure_storage_connection_string/update", testToken, "application/json", `{"credential":{"type":"azure_storage_connection_string","connection_string":"c"}}`, 202},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/c_custom_headers/update", testToken, "application/json", `{"credential":{"type":"custom_headers","headers":[{"name":"n","value":"v","sensitive":true}]}}`, 202},
		exchange{"GET", "/api/v2/sources/s_postgresql", "wrong", "", "", 401},
		exchange{"GET", "/api/v2/sources/nope", testToken, "", "", 404},
		exchange{"POST", "/api/v2/sources/s_stac/credentials/nope/update", testToken, "application/json", `{"credential":{"type":"key_pair","private_key":"k"}}`, 404},
		exchange{"POST", "/api/v2/sources/s_postgresql/update", testToken, "application/json", `{"connection":{"type":"postgresql","pasword":"p"}}`, 422},
		exchange{"POST", "/api/v2/sources/s_postgresql/update", testToken, "text/plain", `{}`, 422},
		exchange{"POST", "/api/v2/sources/s_snowflake/sync", testToken, "", "", 202},
		exchange{"GET", "/api/v2/sources/s_snowflake", testToken, "", "", 200},
		exchange{"GET", "/api/v2/sources/s_snowflake", testToken, "", "", 200},
		exchange{"GET", "/api/v2/sources/s_snowflake", testToken, "", "", 200},
		exchange{"POST", "/api/v2/sources/nope/sync", testToken, "", "", 404},
		exchange{"POST", "/api/v2/sources/s_snowflake/sync", "wrong", "", "", 401},
		exchange{"POST", "/api/v2/sources/s_snowflake/sync", testToken, "application/json", `{"full":true}`, 422},
	)
	for _, x := range ex {
		req, err := http.NewRequest(x.method, e.server.URL+x.path, strings.NewReader(x.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+x.token)
		if x.contentType != "" {
			req.Header.Set("Content-Type", x.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != x.status {
			t.Errorf("%s %s: %d %s, want %d", x.method, x.path, resp.StatusCode, body, x.status)
			continue
		}
		checkContractResponse(t, router, x.method, x.path, resp, body)
	}

	// Injected 403, 429 and 500 answers too.
	for _, status := range []int{403, 429, 500} {
		e.fake.SetFault(ErrorFault(status, "3", 1))
		req, _ := http.NewRequest("GET", e.server.URL+"/api/v2/sources/s_postgresql", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("fault %d answered %d", status, resp.StatusCode)
		}
		checkContractResponse(t, router, "GET", "/api/v2/sources/s_postgresql", resp, body)
	}
}

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
