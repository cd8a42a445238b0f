// Package rivergen pushes rotated credentials to RiverGen data sources.
//
// # Wire mapping
//
// One target is one RiverGen data source (config key data_source_id). A rotation becomes
//
//	PATCH /api/v1/data-sources/{data_source_id}/credentials
//	Content-Type: application/json
//
// whose body carries only the fields being rotated (RiverGen's update is partial: a field left
// out keeps its stored value):
//
//	neutral credential                  RiverGen field
//	password.password                   password
//	password.username (when set)        username
//	token.token                         api_key or oauth_token, as the target's token_field says
//	ssh_tunnel.private_key (any type)   ssh_private_key
//	ssh_tunnel.passphrase (when set)    ssh_passphrase
//	target rotate_credentials: true     "rotate_credentials": true (never sent when false)
//
// key_pair is refused (422 before anything is sent): RiverGen has no private-key field for the
// database besides the SSH tunnel key. A token credential is refused when the target has no
// token_field, and every other neutral type is refused as well.
//
// # Verification
//
// With verify: true (the default), Verify calls RiverGen's Test Connection,
//
//	POST /api/v1/data-sources/{data_source_id}/test
//
// always with a JSON object body: {} by default, plus "test_query" and "timeout_seconds" when
// the target sets test_query and test_timeout_seconds. RiverGen answers 200 whether or not it
// could connect, so the verdict is data.connection_successful; when false, Verify fails with
// core.CodeVerificationFailed (final) and the message "<data.error_code>: <data.error_message>".
// With verify: false Verify answers Verified false without calling RiverGen.
//
// # Errors
//
// The vendor doc gives only status and code for errors (401 UNAUTHORIZED, 403 FORBIDDEN, 404
// NOT_FOUND). Assumed error shape (and the one the fake serves):
//
//	{"success": false, "error": {"code": "NOT_FOUND", "message": "...", "details": [...]}, "message": "..."}
//
// The adapter parses this tolerantly: error as a string, a plain {"message"}, FastAPI-style
// {"detail": "..."} or {"detail": [{"loc", "msg"}]}; a non-JSON body gives a bounded snippet.
// It never quotes back a value the vendor echoes ("input"); the body it reads was already scrubbed
// of the secrets it sent by vendorhttp. Classification: 401 unauthorized, 403 forbidden (the token's user is not a member
// of any RiverGen organization), 404 not_found ("data source <id> not found"), other 4xx
// (400/422 validation) rejected, all final; 429 and 5xx retryable with Retry-After
// (vendorhttp.Classify). A 2xx whose envelope says "success": false is rejected (final).
//
// # Config
//
//   - platform: rivergen
//     data_source_id: 1            # required, integer > 0
//     token_field: api_key         # api_key | oauth_token; needed only to accept token credentials
//     rotate_credentials: false    # default false
//     verify: true                 # default true
//     test_query: SELECT 1         # optional, sent to Test Connection
//     test_timeout_seconds: 10     # optional, > 0, shorter than the platform timeout
//
// test_query and test_timeout_seconds are refused together with verify: false (they would do
// nothing).
//
// # Fake
//
// Package rivergenfake (rivergenfake.New) is the in-memory RiverGen the tests, the demo and the
// benchmarks use: a reading of seed 001 of its own, sharing nothing with this package; see its
// documentation for the seeding methods.
package rivergen
