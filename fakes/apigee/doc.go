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
// Processing modes the runtime expects from the gateway: request headers SEND,
// request body BUFFERED, response headers SEND, response body STREAMED. It
// also accepts a body-less request (end_of_stream on the headers) and a
// STREAMED request body (each chunk is answered at once; the decision comes
// on the last one, so with STREAMED the backend may see the first chunks of a
// request that is then refused — use BUFFERED, as the gateway does).
package apigee
