// The contract test checks the fake's answers against Felt's OpenAPI document
// (testdata/felt/openapi.json) with kin-openapi's openapi3filter, a validator other than the
// fake's own (schema.go).

package feltfake

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
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
