package manifests

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// annotate gives the default topology's Gateway the annotations in yaml
// (lines of "    key: value").
func annotate(yaml string) edit {
	return patch("gateway.yaml", "  name: inference-gateway\n", "  name: inference-gateway\n  annotations:\n"+yaml)
}

func TestCompileLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		want  Limits
		field string // of the one error, when the annotations are bad
		msg   string
	}{
		{name: "none: defaults", yaml: "    example.com/other: x\n", want: DefaultLimits()},
		{
			name: "every limit, plain numbers",
			yaml: "    gatecheck.dev/max-request-body-bytes: \"1024\"\n" +
				"    gatecheck.dev/max-request-headers-bytes: \"2048\"\n" +
				"    gatecheck.dev/max-request-headers: \"10\"\n" +
				"    gatecheck.dev/max-url-length: \"256\"\n",
			want: Limits{MaxRequestBodyBytes: 1024, MaxRequestHeadersBytes: 2048, MaxRequestHeaders: 10, MaxURLLength: 256},
		},
		{
			name: "byte sizes as quantities, the rest default",
			yaml: "    gatecheck.dev/max-request-body-bytes: 1Mi\n    gatecheck.dev/max-request-headers-bytes: 8k\n",
			want: Limits{MaxRequestBodyBytes: 1 << 20, MaxRequestHeadersBytes: 8000, MaxRequestHeaders: DefaultMaxRequestHeaders, MaxURLLength: DefaultMaxURLLength},
		},
		{
			name: "ceilings are allowed",
			yaml: "    gatecheck.dev/max-request-body-bytes: 32Mi\n    gatecheck.dev/max-url-length: \"1048576\"\n",
			want: Limits{MaxRequestBodyBytes: 32 << 20, MaxRequestHeadersBytes: DefaultMaxRequestHeadersBytes, MaxRequestHeaders: DefaultMaxRequestHeaders, MaxURLLength: 1 << 20},
		},
		{
			name: "not a number", yaml: "    gatecheck.dev/max-url-length: lots\n",
			field: `metadata.annotations["gatecheck.dev/max-url-length"]`,
			msg:   `must be a whole number from 1 to 1048576, got "lots"`,
		},
		{
			name: "a quantity where a plain number is wanted", yaml: "    gatecheck.dev/max-request-headers: 1k\n",
			field: `metadata.annotations["gatecheck.dev/max-request-headers"]`,
			msg:   `must be a whole number from 1 to 10000, got "1k"`,
		},
		{
			name: "zero", yaml: "    gatecheck.dev/max-request-headers: \"0\"\n",
			field: `metadata.annotations["gatecheck.dev/max-request-headers"]`,
			msg:   `must be a whole number from 1 to 10000, got "0"`,
		},
		{
			name: "negative", yaml: "    gatecheck.dev/max-url-length: \"-1\"\n",
			field: `metadata.annotations["gatecheck.dev/max-url-length"]`,
			msg:   `must be a whole number from 1 to 1048576, got "-1"`,
		},
		{
			name: "above the ceiling", yaml: "    gatecheck.dev/max-request-body-bytes: 64Mi\n",
			field: `metadata.annotations["gatecheck.dev/max-request-body-bytes"]`,
			msg:   `must be a whole number of bytes (like 65536 or 64Ki) from 1 to 33554432, got "64Mi"`,
		},
		{
			name: "fractional quantity", yaml: "    gatecheck.dev/max-request-headers-bytes: 100m\n",
			field: `metadata.annotations["gatecheck.dev/max-request-headers-bytes"]`,
			msg:   `must be a whole number of bytes (like 65536 or 64Ki) from 1 to 1048576, got "100m"`,
		},
		{
			name: "empty", yaml: "    gatecheck.dev/max-request-body-bytes: \"\"\n",
			field: `metadata.annotations["gatecheck.dev/max-request-body-bytes"]`,
			msg:   `must be a whole number of bytes (like 65536 or 64Ki) from 1 to 33554432, got ""`,
		},
		{
			name: "overflow", yaml: "    gatecheck.dev/max-request-body-bytes: \"99999999999999999999\"\n",
			field: `metadata.annotations["gatecheck.dev/max-request-body-bytes"]`,
			msg:   `must be a whole number of bytes (like 65536 or 64Ki) from 1 to 33554432, got "99999999999999999999"`,
		},
		{
			name: "typo", yaml: "    gatecheck.dev/max-url-lenght: \"100\"\n",
			field: `metadata.annotations["gatecheck.dev/max-url-lenght"]`,
			msg: "unknown gatecheck annotation (known: gatecheck.dev/max-request-body-bytes, gatecheck.dev/max-request-headers-bytes, " +
				"gatecheck.dev/max-request-headers, gatecheck.dev/max-url-length)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := defaultFiles(t)
			annotate(tt.yaml)(files)
			s, err := loadAndCompile(files)
			if tt.field == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, s.Gateways[0].Limits)
				return
			}
			require.Error(t, err)
			assert.Nil(t, s)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%T is not a *FieldError", err)
			assert.Equal(t, &FieldError{File: "gateway.yaml", Object: "Gateway default/inference-gateway", Field: tt.field, Msg: tt.msg}, fe)
		})
	}
}

func TestCompileLimitsReportsEveryProblem(t *testing.T) {
	t.Parallel()
	files := defaultFiles(t)
	annotate("    gatecheck.dev/max-url-length: x\n    gatecheck.dev/nope: \"1\"\n    gatecheck.dev/max-request-headers: \"5\"\n")(files)
	_, err := loadAndCompile(files)
	require.Error(t, err)
	assert.Equal(t, `gateway.yaml: Gateway default/inference-gateway: metadata.annotations["gatecheck.dev/max-url-length"]: must be a whole number from 1 to 1048576, got "x"`+"\n"+
		`gateway.yaml: Gateway default/inference-gateway: metadata.annotations["gatecheck.dev/nope"]: unknown gatecheck annotation (known: `+knownAnnotations()+`)`,
		err.Error())
}

func TestLimitsOrDefaults(t *testing.T) {
	t.Parallel()
	assert.Equal(t, DefaultLimits(), Limits{}.OrDefaults())
	assert.Equal(t, DefaultLimits(), Limits{MaxRequestBodyBytes: -1, MaxURLLength: -5}.OrDefaults())
	l := Limits{MaxRequestBodyBytes: 1, MaxRequestHeadersBytes: 2, MaxRequestHeaders: 3, MaxURLLength: 4}
	assert.Equal(t, l, l.OrDefaults())
	s, err := LoadDefault()
	require.NoError(t, err)
	assert.Equal(t, DefaultLimits(), s.Gateways[0].Limits, "the default topology sets no limits")
}
