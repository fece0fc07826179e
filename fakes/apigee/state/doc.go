// Package state keeps the fake Apigee runtime's state: the organisation's
// developers, apps, keys and products in the management API's shapes
// (internal/apigeeapi), the access tokens it has issued, and the quota and
// spike-arrest counters.
//
// Store is the interface; there are two implementations held to the same
// behaviour by one conformance suite (store_test.go):
//
//   - Memory (NewMemory), the default: everything in maps behind locks.
//   - File (OpenFile), a bbolt file for the sandbox, so that provisioned apps
//     and keys — and the counters — survive a restart. One process holds the
//     file at a time; a corrupt or foreign file is refused and left untouched.
//
// Values handed in and out are deep copies: a caller mutating what it got
// never changes the store. Emails are compared without case, as Apigee does.
//
// Counters implement Take's contract (see TakeRequest) exactly under
// concurrency: with a limit of N, exactly N units are admitted however many
// goroutines race, because the check and the add happen under one lock (or in
// one bbolt write transaction).
package state
