// Package faults holds credsync's reliability and secret-hygiene proofs; it has no code of its
// own, only tests.
//
// faults_test.go drives the real stack (the fake vendors of internal/demo, a config parsed by
// config.Parse, gateway.New on a SQLite store, the REST API) against a misbehaving vendor, one
// fault per case (fakeutil's ready-made faults: 429 with and without Retry-After, 5xx, connection
// refused, a reset mid-body, a vendor that never answers, a trickling body, a huge or non-JSON
// error body, a redirect to another host), and checks each target's outcome, attempt count and
// time bounds.
//
// store_test.go makes the store fail for real under the running gateway (store.timeout 1s): the
// SQLite file deleted, made immutable (chattr +i), its disk (a 2 MiB tmpfs) filled; a PostgreSQL
// server of the test's own stopped and started again, frozen (SIGSTOP) and thawed. Every API call
// must answer 503 store_unavailable with Retry-After within store.timeout and a margin, /readyz
// 503, /healthz 200, and once the store is back the gateway takes and finishes rotations again
// without a restart. The chattr and tmpfs cases need root (CI runs them as root); without it they
// skip, saying so.
//
// secrets_test.go sends unique secrets through every path (success, every failure class, a
// vendor echoing the secret back raw and JSON-escaped, dry run, retry, a recovered panic) and
// searches every output for them: the log at debug level, every API answer and header, the
// SQLite file and every table, error messages and /metrics.
package faults
