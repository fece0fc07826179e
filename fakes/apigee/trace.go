package apigee

import (
	"strings"
	"sync"
	"time"
)

// Trace is the record of one request through the runtime: Apigee's debug
// session, locally.
type Trace struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Flow   string    `json:"flow"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Outcome is "allowed", "denied" or "error".
	Outcome string `json:"outcome"`
	// Status is the status of the answer: the fault's when denied, the
	// backend's once the response has been seen.
	Status int `json:"status,omitempty"`
	// Fault is the error code when denied, or when a response filter cut a
	// streamed answer short (the outcome stays "allowed" and the status the
	// backend's: the client had them already).
	Fault string `json:"fault,omitempty"`
	Steps []Step `json:"steps"`
}

// Step is one policy's run.
type Step struct {
	Phase    string        `json:"phase"` // request | response
	Policy   string        `json:"policy"`
	Kind     string        `json:"kind"`
	Outcome  string        `json:"outcome"` // ok | fault <code> | error: <msg>
	Duration time.Duration `json:"durationNs"`
	// Vars are the flow variables the policy set or changed, credentials redacted.
	Vars map[string]string `json:"vars,omitempty"`
}

// Traces is a bounded ring of the latest traces.
type Traces struct {
	mu   sync.Mutex
	ring []*Trace
	next int
	full bool
}

// NewTraces returns a ring that keeps the latest n traces (n < 1 means 256).
func NewTraces(n int) *Traces {
	if n < 1 {
		n = 256
	}
	return &Traces{ring: make([]*Trace, n)}
}

// add records a finished trace.
func (t *Traces) add(tr *Trace) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring[t.next] = tr
	t.next = (t.next + 1) % len(t.ring)
	if t.next == 0 {
		t.full = true
	}
}

// Latest returns up to n traces, newest first (n < 1 means all kept).
func (t *Traces) Latest(n int) []Trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	size := t.next
	if t.full {
		size = len(t.ring)
	}
	if n < 1 || n > size {
		n = size
	}
	out := make([]Trace, 0, n)
	for i := 1; i <= n; i++ {
		tr := t.ring[(t.next-i+len(t.ring))%len(t.ring)]
		out = append(out, *tr)
	}
	return out
}

// Get returns the trace with this id.
func (t *Traces) Get(id string) (Trace, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.ring {
		if tr != nil && tr.ID == id {
			return *tr, true
		}
	}
	return Trace{}, false
}

// secretVar says whether a flow variable holds a credential: Apigee's
// client_id is the API key itself.
func secretVar(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"client_id", "client_secret", "consumer_key", "consumer_secret", "apikey", "api_key", "access_token", "authorization", "password", "x-api-key", "token"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// Redact shortens a secret to a recognisable prefix: enough to tell two keys
// apart in a trace, not enough to use one.
func Redact(v string) string {
	if len(v) <= 4 {
		return "****"
	}
	return v[:4] + "****"
}
