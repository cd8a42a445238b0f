// Package databrainfake is an in-memory Databrain (Server, made by New) serving Update Datasource
// (PUT /api/v2/datasource): the fake Databrain that credsync's tests, the demo (credsync demo)
// and the benchmarks talk to.
//
// It is an independent reading of the vendor document, seed 002 (Databrain's Update Datasource),
// written from its text: its table of datasource types and fields (schema.go) is its own, and it
// imports nothing of the adapter (package databrain) nor of any other adapter, so a wrong entry
// in the adapter's table makes the fake refuse the adapter's request instead of passing both. It
// is strict about what it accepts, as the seed describes the real API: the bearer service
// token, Content-Type application/json, no unknown field, the complete credentials structure of
// the datasource's type with the right JSON types, and valid tenancySettings; anything else is
// refused with Databrain's error code and status. It stores what each datasource holds, runs a
// connection test that can be made to fail, and takes injected faults (SetFault; vendor-neutral
// ones in package fakeutil).
//
// It links no testing code, so the shipped binary can carry it for the demo.
package databrainfake
