// Package rivergenfake is an in-memory RiverGen (Server, made by New) serving Update Credentials
// (PATCH /api/v1/data-sources/{data_source_id}/credentials) and Test Connection (POST
// /api/v1/data-sources/{data_source_id}/test): the fake RiverGen that credsync's tests, the demo
// (credsync demo) and the benchmarks talk to.
//
// It is an independent reading of the vendor document, seed 001 (RiverGen's Update Data Source
// Credentials; seed 001 has no page for Test Connection nor an error body, so those follow the
// shape credsync assumes, the one package rivergen documents): its list of fields and their JSON types is
// its own, and it imports nothing
// of the adapter (package rivergen) nor of any other adapter, so a mistake in the adapter's
// request makes the fake refuse it instead of passing both. It is strict about what it accepts:
// the bearer token, an organization member, a known data source, an application/json body that
// is one JSON object, no unknown field and no wrong JSON type; anything else is refused with the
// status and error envelope the seed describes. It stores the credentials it receives, answers
// Test Connection as set (or by comparing the stored password with the database's, after
// SetDatabasePassword), and takes injected faults (SetFault; vendor-neutral ones in package
// fakeutil).
//
// It links no testing code, so the shipped binary can carry it for the demo.
package rivergenfake
