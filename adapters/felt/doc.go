// Package felt drives Felt (felt.com) sources for credsync: it maps a neutral credential to one
// of Felt's two update calls, sends it with the platform's API token, reads Felt's error bodies,
// and verifies the new credential by polling the source's sync status for a sync that finished
// after the update. The fake Felt server the tests, the demo and the benchmarks use is package
// feltfake, a reading of Felt's OpenAPI document that shares nothing with this package.
//
// # Target modes
//
// A Felt target names a source (source_id) and works in one of two modes.
//
// Credential mode (credential_id set): the target rotates one source credential with
//
//	POST /api/v2/sources/{source_id}/credentials/{credential_id}/update
//	{"credential": {"type": <credential_type>, ...}}
//
// credential_type is the Felt credential's type and fixes the one neutral type the target takes:
//
//	key_pair                         <- key_pair                (private_key, private_key_passphrase?, private_key_name?)
//	snowflake_pat                    <- token                   (token)
//	gcp_service_account_json         <- gcp_service_account     (service_account_json as a JSON object, service_account_filename?)
//	aws_assume_role                  <- aws_assume_role         (role_arn, role_session_name)
//	azure_storage_connection_string  <- azure_connection_string (connection_string)
//	custom_headers                   <- custom_headers          (headers: [{name, value, sensitive}])
//
// Felt's databricks_pat and oauth_m2m credentials exist but SourceCredentialUpdateParams cannot
// carry them: such a target is refused when the config loads.
//
// Connection mode (no credential_id): the target rotates the credential held in the source's
// connection parameters with
//
//	POST /api/v2/sources/{source_id}/update
//	{"connection": {"type": <connection_type>, ...}}
//
//	postgresql, mssql, redshift, snowflake <- password            (password, and user when the username rotates)
//	feature_server, stac                   <- token               (token)
//	bigquery                               <- gcp_service_account (base64_encoded_service_account: base64 of the JSON)
//
// Other connection types have no credential in their connection parameters and are refused when
// the config loads.
//
// A credential field Felt has no place for (a key pair's username) is refused with a
// *core.InputError rather than dropped, so that nothing is half-applied. A credential's
// ssh_tunnel is the exception, the same for every vendor: it is for the source's targets that
// tunnel, and Felt has no SSH field, so a Felt target ignores it.
//
// # Verification
//
// Felt answers 202 and connects asynchronously. With verify (the default) Send first reads the
// source (GET /api/v2/sources/{source_id}) and keeps its last_synced_at, then sends the update.
// Verification is one check per Verify call, repeated by the engine every poll_interval: in
// credential mode the first check asks for a sync (POST /api/v2/sources/{source_id}/sync: Felt
// documents no sync after a credential update); the others read Show Source. A sync_status
// "completed" (verified) or "failed" (verification_failed, final) counts only when
// last_synced_at moved past the value read before the update: Felt's job may not have started
// when a check arrives, and a status left over from before proves nothing. When a sync was
// already running at that read, the first one seen to finish may have used the previous
// credential: it moves the baseline, a new sync is asked for, and only a later one counts.
// Checks answered 429/5xx, unreadable or lost on the network are asked again at the next
// interval (or after Retry-After); 401, 403 and 404 end verification with an error. Past
// verify_timeout the result is a warning, not an error: the update itself landed.
//
// # Errors
//
// Felt's error bodies (UnauthorizedError, NotFoundError, JsonErrorResponse, InternalServerError:
// errors[] with title, detail and source.header / .parameter / .pointer) become one line such as
// "Unprocessable Entity: credential.private_key: is invalid". Statuses are classified by
// vendorhttp: 429 and 5xx are retried, other 4xx are final.
package felt
