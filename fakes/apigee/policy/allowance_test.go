package policy

import (
	"testing"
	"time"
)

func TestParseAllowance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"1500", 1500 * time.Millisecond, true},
		{"2d", 48 * time.Hour, true},
		{"-1", 0, false},
		{"-5s", 0, false},
		{"200000d", 0, false}, // beyond a time.Duration: an error, not a wrap-around
		{"9223372036854775807", 0, false},
		{"soon", 0, false},
	} {
		got, ok := parseAllowance(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseAllowance(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
