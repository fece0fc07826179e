// Package apigee is the fake Apigee runtime: the policy decision point that the
// gateway calls over Envoy ext_proc v3 for every request on a Gateway that an
// APIMExtensionPolicy targets.
//
// A Runtime serves one flow — the request and response policies of one
// APIMExtensionPolicy (the operator's default security, plus any policy XML the
// topology attaches). Per request it runs the request policies once the whole
// request is known (headers, and the body when there is one), then either
// allows it — removing the credential header, dropping any x-apigee-* headers
// the client tried to set, and adding x-apigee-app, x-apigee-developer and
// x-apigee-product that the backend can trust — or ends it with an
// immediate_response carrying Apigee's fault JSON and status. Response bodies
// stream through chunk by chunk; at the end of the answer the response
// policies run (token quotas count what the answer used).
//
// Every request leaves a trace in a bounded ring (Apigee's debug session,
// locally): each policy, its outcome, the time it took and the flow variables
// it set, with credentials redacted. Denied responses carry
// x-gatecheck-trace-id so a trace can be looked up.
//
// Response policies that act on the answer before the client has it
// (policy.ResponseFilter: SanitizeModelResponse redacting or blocking, JSON
// and regular-expression checks of a response) are asked for a filter when
// the response headers arrive. A streamed answer (text/event-stream,
// application/x-ndjson) stays STREAMED: each body chunk goes through the
// filters in flow order and is answered with a body mutation carrying what
// they let out (a filter holds back the tail that could still start a
// match, so a card number split across chunks is found; the rest comes with
// the last chunk). Any other answer is asked for BUFFERED with a
// mode_override in the response headers answer, and answered whole: the
// filtered body, or an immediate_response with the fault. Content-Length is
// removed whenever a filter runs. When a filter refuses a streamed answer,
// whose 200 is gone, the runtime sends what was safe, then the fault in the
// stream's framing (an OpenAI error event and data: [DONE], or an Ollama
// {"error":...} line), drops the rest of the upstream body, and records the
// fault in the trace. The response flow at the end of the answer (the token
// count) reads the answer as the backend sent it, and skips the policies
// that filtered.
//
// Processing modes the runtime expects from the gateway: request headers SEND,
// request body BUFFERED, response headers SEND, response body STREAMED (or
// BUFFERED by mode_override, for a whole answer a filter must see). It
// also accepts a body-less request (end_of_stream on the headers) and a
// STREAMED request body (each chunk is answered at once; the decision comes
// on the last one, so with STREAMED the backend may see the first chunks of a
// request that is then refused — use BUFFERED, as the gateway does).
package apigee
