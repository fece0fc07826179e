// Package epp is gatecheck's endpoint picker (EPP): an Envoy ext_proc v3 gRPC
// server that speaks the Gateway API Inference Extension EPP protocol v1.0.0
// and picks, for each inference request, the model server of an InferencePool
// that should answer it.
//
// # Protocol
//
// The gateway opens one ext_proc stream per HTTP request and is expected to
// use these processing modes (the ones GIE documents for its EPP):
//
//	request_header_mode:  SEND
//	request_body_mode:    FULL_DUPLEX_STREAMED
//	request_trailer_mode: SEND (optional)
//	response_header_mode: SEND
//	response_body_mode:   FULL_DUPLEX_STREAMED
//	response_trailer_mode: SEND (optional)
//
// The picker learns the gateway's body modes from the protocol_config that
// Envoy attaches to the first message of a stream; when it is absent both body
// modes are taken to be FULL_DUPLEX_STREAMED. The request side then goes:
//
//  1. request headers: remembered, not answered (the body follows).
//  2. request body chunks: buffered, not answered, until end_of_stream (or
//     the request trailers).
//  3. the body is parsed as JSON and its "model" field read; a missing model
//     or a body that is not a JSON object ends the request with an immediate
//     response 400. The scheduler picks an endpoint, and the picker answers in
//     one go:
//     a headers response that sets x-gateway-destination-endpoint: ip:port
//     (the pick first, then up to Config.Fallbacks runners-up, comma
//     separated) with clear_route_cache, the same value in dynamic metadata
//     envoy.lb / x-gateway-destination-endpoint, and then the unchanged body
//     as streamed body mutations of at most 62,000 bytes, the last one with
//     end_of_stream.
//
// Other request modes are accepted too. BUFFERED and BUFFERED_PARTIAL: the
// headers are answered at once with clear_route_cache (Envoy waits for that
// answer before it sends the body) and the single body message is answered
// with a body response whose header mutation sets the destination, as the
// pre-1.0 EPP did; when protocol_config says
// send_body_without_waiting_for_header_response the headers answer is held
// instead and carries the destination. STREAMED and NONE cannot route on the
// body, so the endpoint is picked when the headers arrive, as for a body-less
// request. A request whose headers carry end_of_stream (no body) goes to a
// random ready endpoint.
//
// On the response side the headers answer sets
// x-gateway-destination-endpoint-served to the endpoint picked (the picker
// echoes its own choice as the served one), and response body chunks pass
// through one by one: streamed body mutations with the end_of_stream received
// in FULL_DUPLEX_STREAMED mode, plain "continue" answers otherwise. Response
// bodies are never buffered.
//
// Errors are answered with immediate responses: 400 (plain text, for example
// "model not found in request body"), 413 for a request body over 16 MiB, 503
// (JSON) when no endpoint is ready or none of the subset hinted by the proxy
// in filter metadata envoy.lb.subset_hint / x-gateway-destination-endpoint-subset
// is. The request headers x-request-id and x-gateway-inference-objective are
// read for logs; priorities are out of scope.
//
// # Scheduling
//
// Each endpoint's /metrics is scraped every Config.ScrapeInterval and parsed
// with the Prometheus text parser (vLLM names by default, SGLang names when
// the pod label inference.networking.k8s.io/engine-type is sglang). An
// endpoint is ready while its last good scrape is younger than
// Config.StaleAfter; once older, it is stale only if the scrapes since have
// failed, so a simulated clock that jumps forward does not empty the pool
// between two scrapes. An endpoint that answers /metrics with a 4xx or with
// something that is not Prometheus text (Ollama) is ready with unknown load
// and is scored by the requests the picker itself has in flight to it.
//
// For a request with a model, the filters keep the ready endpoints (within
// the subset hint, if any) and, for a LoRA adapter, those that have it loaded
// or queued or have a free adapter slot (falling back to all when none has).
// The scorers each give a score in [0, 1]:
//
//   - queue: (max−q)/(max−min) over the candidates, 1 when all are equal,
//     where q is vllm:num_requests_waiting plus the requests this picker has
//     sent to the endpoint since its last scrape that are still in flight (so
//     a burst spreads before the next scrape shows it); for an endpoint
//     without metrics q is its in-flight count;
//   - kv-cache: 1 − vllm:kv_cache_usage_perc (the average of the other
//     candidates for an endpoint without metrics);
//   - prefix: the share of the prompt's 64-character blocks (about 16 tokens)
//     that the endpoint was last sent, from a per-endpoint LRU of chained
//     block hashes recorded on every pick;
//   - LoRA affinity (only for adapter requests): 1 when the adapter is
//     running, 0.8 when a slot is free, 0.6 when it is waiting, else 0.
//
// A request is an adapter request when some candidate reports
// vllm:lora_requests_info with max_lora > 0 and the model is not a base model
// named by the model_name label of the candidates' metrics. The max-score
// picker takes the highest weighted sum (default weights: queue 2, kv-cache 2,
// prefix 3 as in GIE's default profile, LoRA 1), prefers among equals the
// endpoint with fewer requests waiting, running and pending (in flight, for an
// endpoint without metrics), and breaks the remaining ties with a seeded
// random generator. Runners-up in score order follow the pick in the
// destination header, for the proxy to try on retry.
package epp
