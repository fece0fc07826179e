package policy

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// What the threat protection policies (JSONThreatProtection,
// RegularExpressionProtection, GraphQL, SanitizeUserPrompt,
// SanitizeModelResponse) share: <Source>, the gatecheck <FaultStatus>, and
// the status their faults default to.

// source is a threat policy's <Source>: which message it checks.
type source int

const (
	// srcMessage is the message of the phase: the request in the request
	// flow, the response in the response flow (Apigee's default).
	srcMessage source = iota
	srcRequest
	srcResponse
)

func (s source) String() string {
	switch s {
	case srcRequest:
		return "request"
	case srcResponse:
		return "response"
	}
	return "message"
}

// parseSource parses an optional <Source>request|response|message</Source>.
func parseSource(pe perr, x *string, def source) (source, error) {
	if x == nil {
		return def, nil
	}
	switch strings.TrimSpace(*x) {
	case "request":
		return srcRequest, nil
	case "response":
		return srcResponse, nil
	case "message":
		return srcMessage, nil
	}
	return 0, pe.elem("Source", "%q is not request, response or message", strings.TrimSpace(*x))
}

// part is the message a threat policy checks.
type part struct {
	response bool
	header   http.Header
	body     []byte
}

func (p part) contentType() string { return p.header.Get("Content-Type") }

// part returns the message s names in m: a response exists only in the
// response phase (ok is false before).
func (s source) part(m *Message) (part, bool) {
	resp := s == srcResponse || s == srcMessage && m.Phase == Response
	if !resp {
		return part{header: m.Header, body: m.Body}, true
	}
	if m.Phase != Response {
		return part{}, false
	}
	return part{response: true, header: m.ResponseHeader, body: m.ResponseBody}, true
}

// checksResponse reports whether s names the response in the response
// phase: the policy then checks the answer, and may do it as a
// ResponseFilter before the answer goes out.
func (s source) checksResponse() bool { return s != srcRequest }

// parseFaultStatus parses the gatecheck extension <FaultStatus>400</FaultStatus>:
// the HTTP status of the policy's faults, standing in for the FaultRule an
// Apigee proxy would use to change it. 0 when absent.
func parseFaultStatus(pe perr, x *string) (int, error) {
	if x == nil {
		return 0, nil
	}
	s := strings.TrimSpace(*x)
	n, err := strconv.Atoi(s)
	if err != nil || n < 400 || n > 599 {
		return 0, pe.elem("FaultStatus", "%q is not an HTTP error status (400 to 599)", s)
	}
	return n, nil
}

// threatFault is def's fault with the engine's fault string text. Its status
// is, in order: the policy's <FaultStatus>; 500 when the policy refused a
// response (Apigee answers threat faults on responses with 500); else the
// table's (400 for requests, gatecheck's default, where Apigee's own is 500
// unless a FaultRule changes it).
func threatFault(def *FaultDef, status int, response bool, text string) *Fault {
	f := &Fault{Status: def.Status, Code: def.Code, FaultString: text}
	switch {
	case status > 0:
		f.Status = status
	case response:
		f.Status = http.StatusInternalServerError
	}
	return f
}

// mediaIs reports whether a Content-Type is typ or, when suffix is set, a
// type ending in it (application/problem+json).
func mediaIs(contentType, typ, suffix string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	return mt == typ || suffix != "" && strings.HasSuffix(mt, suffix)
}

func isJSONMedia(contentType string) bool { return mediaIs(contentType, "application/json", "+json") }

func isXMLMedia(contentType string) bool {
	return mediaIs(contentType, "application/xml", "+xml") || mediaIs(contentType, "text/xml", "")
}

// boolString is "true" or "false".
func boolString(b bool) string { return strconv.FormatBool(b) }
