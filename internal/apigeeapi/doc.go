// Package apigeeapi is Apigee's management API as gatecheck speaks it: the
// JSON shapes (types.go) and a small client (client.go).
//
// The shapes are those of apigee.googleapis.com/v1
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest), as far
// as gatecheck uses them. Field names and casing follow Apigee's
// documentation; int64 values that Apigee sends as strings (timestamps, quota
// limits) are strings here too, so a real organisation's answers decode.
//
// The client talks to gatecheck's fake management API
// (fakes/apigee/mgmt) and, with the same calls, to a real Apigee
// organisation: base URL https://apigee.googleapis.com and a token from
// `gcloud auth print-access-token`. Only AdvanceClock is gatecheck's own
// (under /v1/emulator); a real Apigee answers it with 404.
package apigeeapi
