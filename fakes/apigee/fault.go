package apigee

import (
	"encoding/json"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// TraceHeader carries the trace id of a request on the answers the runtime
// makes, so `gatecheck sandbox trace` and the scenarios can look it up.
const TraceHeader = "x-gatecheck-trace-id"

// FaultJSON renders a fault as Apigee's error body.
func FaultJSON(f *policy.Fault) []byte {
	b, _ := json.Marshal(apigeeapi.Fault{Fault: apigeeapi.FaultBody{
		FaultString: f.FaultString,
		Detail:      apigeeapi.FaultDetail{ErrorCode: f.Code},
	}})
	return b
}

// faultResponse is the immediate_response for a fault.
func faultResponse(f *policy.Fault, traceID string) *extprocv3.ProcessingResponse {
	h := map[string]string{"content-type": "application/json", TraceHeader: traceID}
	for k, v := range f.Headers {
		h[k] = v
	}
	status := f.Status
	if status < 200 || status > 599 {
		status = 500
	}
	return extproc.ImmediateResponse(status, h, FaultJSON(f))
}

// internalFault is what a runtime failure (a store error, a broken policy)
// answers: Apigee's 500 with a messaging.runtime code, never an allow.
func internalFault(msg string) *policy.Fault {
	return &policy.Fault{Status: 500, Code: "messaging.runtime.UnexpectedError", FaultString: msg}
}
