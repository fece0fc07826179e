package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	want := fixedReport(t)
	var buf bytes.Buffer
	require.NoError(t, WriteYAML(&buf, want))
	written := buf.String()
	got, err := ReadYAML(&buf)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Document markers around a single document are fine.
	got, err = ReadYAML(strings.NewReader("---\n" + written + "...\n"))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestWriteYAMLRefusesInvalid(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	r.Profiles[1].Core.Result = Partial
	var buf bytes.Buffer
	err := WriteYAML(&buf, r)
	require.EqualError(t, err, `report: invalid: profiles[1].core.result: "partial" but 0 tests skipped`)
	assert.Zero(t, buf.Len(), "nothing is written")
}

func TestReadYAMLErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteYAML(&buf, fixedReport(t)))
	valid := buf.String()

	tests := []struct {
		name string
		in   string
		want string // a part of the error
	}{
		{"unknown top-level field", valid + "extra: 1\n", `unknown field "extra"`},
		{"unknown nested field", strings.Replace(valid, "    result: success\n", "    result: success\n    verdict: fine\n", 1), `unknown field "verdict"`},
		{"repeated field", valid + "mode: default\n", `"mode" already set`},
		{"wrong type", strings.Replace(valid, "Passed: 2", "Passed: two", 1), "cannot unmarshal"},
		{"negative count", strings.Replace(valid, "Passed: 2", "Passed: -2", 1), "cannot unmarshal"},
		{"invalid content", strings.Replace(valid, "target: kind", "target: prod", 1), `report: invalid: target: "prod" is not one of sim, kind, external`},
		{"not YAML", "\t{", "report: decode"},
		{"two documents", valid + "---\n" + valid, "report: decode: more than one YAML document"},
		{"a different second document", valid + "---\nfoo: bar\n", "more than one YAML document"},
		{"empty", "", "apiVersion: required"},
		{"too large", valid + "# " + strings.Repeat("x", MaxReportSize) + "\n", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ReadYAML(strings.NewReader(tt.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Nil(t, r)
		})
	}
}

// FuzzReadYAML feeds ReadYAML arbitrary bytes: it must never panic, and
// whatever it accepts must write back and read back the same.
func FuzzReadYAML(f *testing.F) {
	r, err := Build(fixedResults(), fixedOptions())
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, r); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("apiVersion: gatecheck.dev/v1alpha1\nkind: ConformanceReport\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("profiles: [{name: AUTHN, core: {statistics: {Passed: 4294967296}}}]"))
	f.Add([]byte("{\"apiVersion\": 1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadYAML(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteYAML(&out, r); err != nil {
			t.Fatalf("accepted a report it cannot write: %v", err)
		}
		again, err := ReadYAML(&out)
		if err != nil {
			t.Fatalf("cannot read back what it wrote: %v\n%s", err, out.String())
		}
		assert.Equal(t, r, again)
	})
}
