package policy

import (
	"context"
	"encoding/xml"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// AccessControl allows or denies clients by address. MatchRules are tried in
// order and the first whose SourceAddress (an IPv4 or IPv6 address with a
// mask, or CIDR text) contains the address decides; none matching, the
// IPRules' noRuleMatchAction decides. The address is client.ip, or with
// ValidateBasedOn the X-Forwarded-For addresses: X_FORWARDED_FOR_FIRST_IP,
// X_FORWARDED_FOR_LAST_IP, or X_FORWARDED_FOR_ALL_IP (every address must be
// allowed). Without an X-Forwarded-For header, client.ip is used. A denial
// is 403 accesscontrol.IPDeniedAccess.
type AccessControl struct {
	name     string
	rules    []ipRule
	noMatch  bool // allow when no rule matches
	validate string
}

type ipRule struct {
	allow    bool
	prefixes []netip.Prefix
}

type xmlAccessControl struct {
	xmlCommon
	IPRules *struct {
		NoRuleMatchAction string `xml:"noRuleMatchAction,attr"`
		MatchRule         []struct {
			Action        string `xml:"action,attr"`
			SourceAddress []struct {
				Mask string `xml:"mask,attr"`
				Text string `xml:",chardata"`
			} `xml:"SourceAddress"`
			Unknown []xmlAny `xml:",any"`
		} `xml:"MatchRule"`
		Unknown      []xmlAny   `xml:",any"`
		UnknownAttrs []xml.Attr `xml:",any,attr"`
	} `xml:"IPRules"`
	ValidateBasedOn *string `xml:"ValidateBasedOn"`
}

var validateBasedOn = []string{"X_FORWARDED_FOR_ALL_IP", "X_FORWARDED_FOR_FIRST_IP", "X_FORWARDED_FOR_LAST_IP"}

func parseAccessControl(data []byte, env Env) (Policy, error) {
	var x xmlAccessControl
	pe, err := decodePolicy("AccessControl", data, &x, &x.xmlCommon, []string{"IPRules", "ValidateBasedOn"}, nil)
	if err != nil {
		return nil, err
	}
	if x.IPRules == nil {
		return nil, pe.elem("IPRules", "required")
	}
	if len(x.IPRules.Unknown) > 0 {
		return nil, pe.elem("IPRules", "unknown element <%s> (supported: MatchRule)", x.IPRules.Unknown[0].XMLName.Local)
	}
	for _, a := range x.IPRules.UnknownAttrs {
		return nil, pe.elem("IPRules", "unknown attribute %s (supported: noRuleMatchAction)", a.Name.Local)
	}
	p := &AccessControl{name: x.Name}
	if p.noMatch, err = parseAction(pe, "IPRules", "noRuleMatchAction", x.IPRules.NoRuleMatchAction); err != nil {
		return nil, err
	}
	for i, mr := range x.IPRules.MatchRule {
		elem := "MatchRule"
		if len(x.IPRules.MatchRule) > 1 {
			elem += "[" + strconv.Itoa(i+1) + "]"
		}
		if len(mr.Unknown) > 0 {
			return nil, pe.elem(elem, "unknown element <%s> (supported: SourceAddress)", mr.Unknown[0].XMLName.Local)
		}
		allow, err := parseAction(pe, elem, "action", mr.Action)
		if err != nil {
			return nil, err
		}
		if len(mr.SourceAddress) == 0 {
			return nil, pe.elem(elem, "at least one <SourceAddress> is required")
		}
		r := ipRule{allow: allow}
		for _, sa := range mr.SourceAddress {
			pfx, err := parseSourceAddress(strings.TrimSpace(sa.Text), strings.TrimSpace(sa.Mask))
			if err != nil {
				return nil, pe.elem(elem+"><SourceAddress", "%v", err)
			}
			r.prefixes = append(r.prefixes, pfx)
		}
		p.rules = append(p.rules, r)
	}
	if x.ValidateBasedOn != nil {
		p.validate = strings.TrimSpace(*x.ValidateBasedOn)
		if !slices.Contains(validateBasedOn, p.validate) {
			return nil, pe.elem("ValidateBasedOn", "%q is not one of %s", p.validate, strings.Join(validateBasedOn, ", "))
		}
	}
	return p, nil
}

func parseAction(pe perr, elem, attr, v string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "ALLOW":
		return true, nil
	case "DENY":
		return false, nil
	case "":
		return false, pe.elem(elem, "the %s attribute is required (ALLOW or DENY)", attr)
	}
	return false, pe.elem(elem, "%s %q is not ALLOW or DENY", attr, v)
}

func parseSourceAddress(text, mask string) (netip.Prefix, error) {
	if text == "" {
		return netip.Prefix{}, errString("empty address")
	}
	if strings.Contains(text, "/") {
		if mask != "" {
			return netip.Prefix{}, errString("address " + strconv.Quote(text) + " has a /prefix and a mask attribute; use one")
		}
		pfx, err := netip.ParsePrefix(text)
		if err != nil {
			return netip.Prefix{}, errString(strconv.Quote(text) + " is not an IP address or CIDR prefix")
		}
		return pfx.Masked(), nil
	}
	addr, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, errString(strconv.Quote(text) + " is not an IP address")
	}
	addr = addr.Unmap()
	bits := addr.BitLen()
	if mask != "" {
		n, err := strconv.Atoi(mask)
		if err != nil || n < 0 || n > addr.BitLen() {
			return netip.Prefix{}, errString("mask " + strconv.Quote(mask) + " is not between 0 and " + strconv.Itoa(addr.BitLen()))
		}
		bits = n
	}
	pfx, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, err
	}
	return pfx, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// Name returns the policy's name.
func (p *AccessControl) Name() string { return p.name }

// Kind returns "AccessControl".
func (p *AccessControl) Kind() string { return "AccessControl" }

// Apply allows or denies the client's address (or addresses).
func (p *AccessControl) Apply(ctx context.Context, m *Message) (*Fault, error) {
	for _, ip := range p.candidates(m) {
		if !p.allows(ip) {
			return faultIPDenied.fault(ip), nil
		}
	}
	return nil, nil
}

func (p *AccessControl) candidates(m *Message) []string {
	if p.validate != "" && m.Header != nil {
		var xff []string
		for _, v := range m.Header.Values("X-Forwarded-For") {
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					xff = append(xff, a)
				}
			}
		}
		if len(xff) > 0 {
			switch p.validate {
			case "X_FORWARDED_FOR_FIRST_IP":
				return xff[:1]
			case "X_FORWARDED_FOR_LAST_IP":
				return xff[len(xff)-1:]
			}
			return xff
		}
	}
	return []string{m.ClientIP}
}

// allows decides one address; an address that does not parse matches no
// rule.
func (p *AccessControl) allows(ip string) bool {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return p.noMatch
	}
	addr = addr.Unmap().WithZone("")
	for _, r := range p.rules {
		for _, pfx := range r.prefixes {
			if pfx.Contains(addr) {
				return r.allow
			}
		}
	}
	return p.noMatch
}
