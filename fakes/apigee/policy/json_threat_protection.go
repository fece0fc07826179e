package policy

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// JSONThreatProtection limits the structure of a JSON payload:
// ContainerDepth, ObjectEntryCount, ArrayElementCount,
// ObjectEntryNameLength and StringValueLength (a missing, zero or negative
// limit is not enforced, as in Apigee). The body is checked with the
// streaming checker threat.JSONLimits.Check, which stops at the first
// excess and never builds the document, so a 50 MB string or a document
// nested 100,000 levels deep costs no more than the bytes read up to the
// limit. A body that is not JSON is a violation too.
//
// As in Apigee the policy checks only a message whose Content-Type is JSON
// (application/json or a +json type); any other passes. Source is request,
// response or message (the default: the message of the phase). A
// violation is steps.jsonthreatprotection.ExecutionFailed with Apigee's
// faultstring naming the limit and the line, status 400 on a request and
// 500 on a response unless <FaultStatus> says otherwise.
//
// With Source response (or message, in the response flow) the policy is a
// ResponseFilter: a JSON answer is buffered and refused before it reaches
// the client.
//
// Sets jsonthreatprotection.{name}.failed (true or false) when it checked
// a body, and .limit (the limit broken) on a violation.
type JSONThreatProtection struct {
	name   string
	src    source
	limits threat.JSONLimits
	status int
}

type xmlJSONThreatProtection struct {
	xmlCommon
	Source                *string `xml:"Source"`
	ContainerDepth        *string `xml:"ContainerDepth"`
	ObjectEntryCount      *string `xml:"ObjectEntryCount"`
	ArrayElementCount     *string `xml:"ArrayElementCount"`
	ObjectEntryNameLength *string `xml:"ObjectEntryNameLength"`
	StringValueLength     *string `xml:"StringValueLength"`
	FaultStatus           *string `xml:"FaultStatus"`
}

func parseJSONThreatProtection(data []byte, _ Env) (Policy, error) {
	var x xmlJSONThreatProtection
	pe, err := decodePolicy("JSONThreatProtection", data, &x, &x.xmlCommon,
		[]string{"Source", "ContainerDepth", "ObjectEntryCount", "ArrayElementCount", "ObjectEntryNameLength", "StringValueLength", "FaultStatus"}, nil)
	if err != nil {
		return nil, err
	}
	p := &JSONThreatProtection{name: x.Name}
	if p.src, err = parseSource(pe, x.Source, srcMessage); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		elem string
		x    *string
		dst  *int
	}{
		{"ContainerDepth", x.ContainerDepth, &p.limits.ContainerDepth},
		{"ObjectEntryCount", x.ObjectEntryCount, &p.limits.ObjectEntryCount},
		{"ArrayElementCount", x.ArrayElementCount, &p.limits.ArrayElementCount},
		{"ObjectEntryNameLength", x.ObjectEntryNameLength, &p.limits.ObjectEntryNameLength},
		{"StringValueLength", x.StringValueLength, &p.limits.StringValueLength},
	} {
		if l.x == nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(*l.x))
		if err != nil {
			return nil, pe.elem(l.elem, "%q is not an integer (a negative value means no limit)", strings.TrimSpace(*l.x))
		}
		*l.dst = n
	}
	if p.status, err = parseFaultStatus(pe, x.FaultStatus); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the policy's name.
func (p *JSONThreatProtection) Name() string { return p.name }

// Kind returns "JSONThreatProtection".
func (p *JSONThreatProtection) Kind() string { return "JSONThreatProtection" }

// Limits returns the configured limits.
func (p *JSONThreatProtection) Limits() threat.JSONLimits { return p.limits }

// Apply checks the Source message when its Content-Type is JSON.
func (p *JSONThreatProtection) Apply(_ context.Context, m *Message) (*Fault, error) {
	msg, ok := p.src.part(m)
	if !ok || !threat.IsJSONBody(msg.contentType(), msg.body) {
		return nil, nil
	}
	pre := "jsonthreatprotection." + p.name + "."
	v := p.limits.Check(bytes.NewReader(msg.body))
	m.vars().Set(pre+"failed", boolString(v != nil))
	if v == nil {
		return nil, nil
	}
	m.vars().Set(pre+"limit", v.Limit)
	return threatFault(faultJSONThreat, p.status, msg.response, v.FaultString(p.name)), nil
}

// NewResponseFilter refuses a JSON answer that breaks the limits before it
// goes out.
func (p *JSONThreatProtection) NewResponseFilter(m *Message) (ChunkFilter, bool) {
	if !p.src.checksResponse() || !isJSONMedia(contentTypeOf(m.ResponseHeader)) {
		return nil, false
	}
	return newWholeFilter(p, m), true
}
