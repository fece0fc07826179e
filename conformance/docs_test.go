package conformance

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's generated sections")

// TestReadmeIsCurrent fails when the README's command and feature references
// differ from what the registries generate. Run with -update to rewrite them.
func TestReadmeIsCurrent(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []struct{ name, body string }{
		{"commands", CommandReference()},
		{"features", FeatureReference()},
	} {
		next, err := ReplaceSection(doc, s.name, s.body)
		if err != nil {
			t.Fatal(err)
		}
		doc = next
	}
	if doc == string(b) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's generated sections are stale: run go test ./conformance -run TestReadmeIsCurrent -update")
}
