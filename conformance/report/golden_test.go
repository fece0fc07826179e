package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden pins the documents of the fixed run. After an intended change,
// run `go test ./conformance/report -run TestGolden -update` and review the
// diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	tests := []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"report.yaml.golden", func(b *bytes.Buffer) error { return WriteYAML(b, r) }},
		{"summary.md.golden", func(b *bytes.Buffer) error { return WriteMarkdown(b, r, fixedResults()) }},
		{"README.md.golden", func(b *bytes.Buffer) error {
			return WriteVendorReadme(b, r, ReproduceCommand(r)+" --gateway-url https://gateway.example.com")
		}},
		{"junit.xml.golden", func(b *bytes.Buffer) error { return WriteJUnit(b, "gatecheck", fixedResults()) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			var got bytes.Buffer
			require.NoError(t, tt.write(&got))
			path := filepath.Join("testdata", tt.file)
			if *update {
				require.NoError(t, os.WriteFile(path, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got.String())
		})
	}
}
