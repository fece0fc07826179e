// Package extproc holds the Envoy ext_proc v3 pieces that the gateway (the
// client) and the processors (the endpoint picker, the Apigee runtime) share:
// the server's receive loop, header-map access that honours both `value` and
// `raw_value`, and builders for the answers processors send.
//
// The protocol is Envoy's: one bidirectional gRPC stream per HTTP request,
// phases in the order request headers → request body → request trailers →
// response headers → response body → response trailers, and exactly one answer
// per message received unless the body is FULL_DUPLEX_STREAMED, where the
// processor may hold answers back until it has seen the end of the body
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/ext_proc/v3/external_processor.proto).
package extproc
