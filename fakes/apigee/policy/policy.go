package policy

import (
	"context"
	"net/http"
	"time"
)

// Phase says which half of the exchange a flow step runs on.
type Phase int

// The phases: the request on its way in, the response on its way out.
const (
	Request Phase = iota
	Response
)

// Message is what a policy reads and changes: the request, and in the
// response phase the response too, plus the flow variables set so far.
// Policies change headers and bodies in place; the runtime turns the changes
// into ext_proc mutations.
type Message struct {
	Phase Phase
	// Now is the time of the step, from the runtime's clock.
	Now time.Time

	Method   string
	Path     string // without the query
	RawQuery string
	Header   http.Header
	ClientIP string
	Body     []byte

	// Response fields, set in the Response phase. ResponseBody is the whole
	// answer for a buffered response, or all chunks seen so far of a streamed
	// one once it ends.
	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte

	// Vars are the flow variables (verifyapikey.VA.client_id, client_id,
	// apiproduct.name, ...). Policies set them; later policies and templates
	// read them. The runtime keeps one Vars for both phases of a request, so
	// a response-phase policy sees what the request phase set. A nil Vars is
	// created on first use.
	Vars *Vars

	// Answer, when a request-phase policy sets it, is the whole reply: the
	// runtime stops the flow and sends it to the client without calling the
	// backend. OAuthV2 GenerateAccessToken answers this way.
	Answer *Answer
}

// Answer is a complete response produced by a policy (for example the JSON
// of a newly minted access token).
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Fault is a policy's refusal: the HTTP status and Apigee's fault (error code
// and fault string). The runtime renders it as Apigee's fault JSON.
type Fault struct {
	Status      int
	Code        string // for example oauth.v2.InvalidApiKey
	FaultString string // for example Invalid ApiKey
	// Headers are added to the error response (for example Retry-After).
	Headers map[string]string
}

// Policy is one parsed, validated Apigee policy.
type Policy interface {
	// Name is the policy's name attribute (VA-VerifyAPIKey).
	Name() string
	// Kind is the XML root element (VerifyAPIKey).
	Kind() string
	// Apply runs the policy on m. A nil fault and nil error means carry on.
	// An error is a failure of the runtime itself (a store error), not a
	// refusal; the runtime answers it as 500.
	Apply(ctx context.Context, m *Message) (*Fault, error)
}
