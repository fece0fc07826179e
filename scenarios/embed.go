// Package scenarios holds the conformance scenarios: testscript files, one
// behaviour each, in a folder per area (authn, authz, ratelimit, threat,
// routing), embedded in the binary. The commands they use are documented in
// the README ("Scenario commands") and in package conformance.
package scenarios

import "embed"

// FS is every scenario, as <area>/<name>.txtar.
//
//go:embed */*.txtar
var FS embed.FS

// Areas are the scenario folders, in report order.
var Areas = []string{"authn", "authz", "ratelimit", "threat", "routing"}
