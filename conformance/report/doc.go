// Package report turns the outcomes of a conformance run into the documents
// people and machines read: a versioned ConformanceReport (YAML), JUnit XML
// for CI systems, a Markdown summary, and the README a vendor publishes
// beside a report.
//
// The report follows the shape of Gateway API's conformance report
// (sigs.k8s.io/gateway-api/conformance/apis/v1) with gatecheck's own
// apiVersion, so that anyone who has read one can read the other: one entry
// per profile, each with a core and an optional extended section holding a
// result (success, partial or failure), statistics, and the names of the
// failed and skipped scenarios. The types are defined here rather than
// imported, to keep the Kubernetes machinery out of the binary.
//
// Build computes a report from scenario results and the target's claims,
// using the feature registry in package conformance; results follow the
// rules of Gateway API's conformance/utils/suite/reports.go:
// a section fails if any of its scenarios failed, is partial if none failed
// but some were skipped, and succeeds otherwise. Unlike Gateway API, a
// scenario skipped because the target does not claim one of its features is
// counted as skipped, not left out, so a report never hides what was not run.
package report
