// Package feltfake is an in-memory Felt Sources API (Server, made by New): the fake Felt that
// credsync's tests, the demo (credsync demo) and the benchmarks talk to.
//
// It is an independent reading of the vendor document, Felt's Sources OpenAPI document, of which
// it embeds a copy (openapi.json, the same bytes as testdata/felt/openapi.json and the shared
// felt-sources-openapi.json: a test checks). It validates every request body against that
// document's schemas, with its own validator, and imports nothing of the adapter (package felt)
// nor of any other adapter: a wrong entry in the adapter's tables makes the fake refuse the
// adapter's request instead of passing both. It is strict about what it accepts, as the real API
// is: a wrong token, an unknown source or credential, a body that is not application/json, an
// unknown field, a wrong type or enum value are all refused with the status and error body Felt
// documents. It stores what it receives, models Felt's asynchronous sync job, and takes injected
// faults (SetFault, ErrorFault; vendor-neutral ones in package fakeutil).
//
// It links no testing code, so the shipped binary can carry it for the demo.
package feltfake
