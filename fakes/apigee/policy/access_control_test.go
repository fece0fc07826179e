package policy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAccessControlCIDR(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ac := f.parse(t, `<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW">
	  <MatchRule action="ALLOW"><SourceAddress mask="32">10.1.2.3</SourceAddress></MatchRule>
	  <MatchRule action="DENY"><SourceAddress mask="8">10.9.9.9</SourceAddress><SourceAddress>192.168.7.0/24</SourceAddress></MatchRule>
	  <MatchRule action="DENY"><SourceAddress mask="32">2001:db8::</SourceAddress></MatchRule>
	  <MatchRule action="DENY"><SourceAddress mask="128">::1</SourceAddress></MatchRule>
	</IPRules></AccessControl>`)
	allowList := f.parse(t, `<AccessControl name="AL"><IPRules noRuleMatchAction="DENY">
	  <MatchRule action="ALLOW"><SourceAddress mask="24">198.51.100.0</SourceAddress></MatchRule>
	</IPRules></AccessControl>`)
	for _, tc := range []struct {
		p     Policy
		ip    string
		allow bool
	}{
		{ac, "10.1.2.3", true},         // first match wins over the /8 deny
		{ac, "10.1.2.4", false},        // the /8 (masked from 10.9.9.9)
		{ac, "10.255.0.1", false},      //
		{ac, "11.0.0.1", true},         // no rule: ALLOW
		{ac, "192.168.7.200", false},   // CIDR text
		{ac, "192.168.8.1", true},      //
		{ac, "::ffff:10.1.2.9", false}, // IPv4-mapped IPv6 is the IPv4 address
		{ac, "2001:db8:1::5", false},   // IPv6 /32
		{ac, "2001:db9::1", true},      //
		{ac, "::1", false},             // IPv6 /128
		{ac, "fe80::1%eth0", true},     // zones are ignored
		{ac, "not-an-ip", true},        // matches no rule
		{allowList, "198.51.100.77", true},
		{allowList, "198.51.101.1", false},
		{allowList, "", false},
	} {
		m := f.msg("GET", "/", "")
		m.ClientIP = tc.ip
		fault := apply(t, tc.p, m)
		if tc.allow {
			require.Nil(t, fault, "%s %s", tc.p.Name(), tc.ip)
			continue
		}
		requireFault(t, fault, 403, "accesscontrol.IPDeniedAccess", "Access Denied for client ip : "+tc.ip)
	}
}

func TestAccessControlXFF(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rules := `<IPRules noRuleMatchAction="ALLOW"><MatchRule action="DENY"><SourceAddress mask="8">10.0.0.0</SourceAddress></MatchRule></IPRules>`
	for _, tc := range []struct {
		validate, xff string
		deniedIP      string
	}{
		{"X_FORWARDED_FOR_FIRST_IP", "10.0.0.1, 203.0.113.9", "10.0.0.1"},
		{"X_FORWARDED_FOR_FIRST_IP", "203.0.113.9, 10.0.0.1", ""},
		{"X_FORWARDED_FOR_LAST_IP", "203.0.113.9, 10.0.0.1", "10.0.0.1"},
		{"X_FORWARDED_FOR_ALL_IP", "203.0.113.9, 10.0.0.2", "10.0.0.2"},
		{"X_FORWARDED_FOR_ALL_IP", "203.0.113.9, 198.51.100.1", ""},
		{"X_FORWARDED_FOR_ALL_IP", "", "10.2.2.2"}, // no header: client.ip
	} {
		p := f.parse(t, `<AccessControl name="X">`+rules+`<ValidateBasedOn>`+tc.validate+`</ValidateBasedOn></AccessControl>`)
		m := f.msg("GET", "/", "")
		m.ClientIP = "10.2.2.2"
		if tc.xff != "" {
			m.Header.Set("X-Forwarded-For", tc.xff)
		}
		fault := apply(t, p, m)
		if tc.deniedIP == "" {
			require.Nil(t, fault, "%s %s", tc.validate, tc.xff)
			continue
		}
		requireFault(t, fault, 403, "accesscontrol.IPDeniedAccess", "Access Denied for client ip : "+tc.deniedIP)
	}
}
