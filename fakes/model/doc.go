// Package model is a fake model server for gatecheck, modelled on
// llm-d-inference-sim (github.com/llm-d/llm-d-inference-sim): it speaks the
// OpenAI and Ollama APIs, streams, keeps running slots and a waiting queue
// that drive vLLM's metrics, serves LoRA adapters and injects failures, all
// without a GPU and deterministically.
//
// # Endpoints
//
// One handler ([Server.Handler]) serves:
//
//   - POST /v1/chat/completions, POST /v1/completions, GET /v1/models
//     (OpenAI, as vLLM serves them; "stream": true gives server-sent events
//     ending in "data: [DONE]", and stream_options.include_usage adds a last
//     chunk with usage and no choices);
//   - POST /api/chat, POST /api/generate (NDJSON stream by default, one object
//     with "stream": false), GET /api/tags, POST /api/show, GET /api/version,
//     GET and HEAD / ("Ollama is running") — the types of
//     github.com/ollama/ollama/api;
//   - GET and POST /graphql (see GraphQL below);
//   - GET /health and GET /ready (200, or 503 after [Server.Close]);
//   - GET /metrics: vllm:num_requests_running, vllm:num_requests_waiting,
//     vllm:kv_cache_usage_perc (and its older name vllm:gpu_cache_usage_perc),
//     vllm:lora_requests_info, vllm:cache_config_info,
//     vllm:prompt_tokens_total, vllm:generation_tokens_total,
//     vllm:request_success_total, vllm:e2e_request_latency_seconds,
//     vllm:time_to_first_token_seconds, vllm:time_per_output_token_seconds,
//     on a registry of the server's own.
//
// Every response carries x-inference-pod, x-inference-port and
// x-inference-namespace.
//
// # Flags
//
// [ParseFlags] reads llm-d's flag names: --model, --served-model-name,
// --port, --mode (random|echo), --seed, --max-num-seqs, --max-model-len,
// --time-to-first-token, --inter-token-latency,
// --time-to-first-token-std-dev, --inter-token-latency-std-dev (each "200ms"
// or plain milliseconds "200"), --lora-modules (plain names, name=path, or
// JSON objects {"name":...,"path":...}), --max-loras,
// --failure-injection-rate, --kv-cache-size (KV blocks of 16 tokens), and
// --pod-name, --pod-namespace (llm-d reads POD_NAME and POD_NAMESPACE from
// the environment instead). --served-model-name and --lora-modules take
// several values after one flag, like vLLM. An unknown flag is an error.
//
// # Tokens
//
// One counter, [Tokenize] (and [CountTokens]), measures prompts and answers:
// whitespace belongs to the token that follows it, letters and digits form
// tokens of at most four characters ("gateway" is "gate" + "way"), and every
// other character is a token alone. The tokens of a text join back into the
// text exactly. A chat prompt counts the tokens of its messages' contents (no
// template overhead). A streamed answer has one chunk (one SSE event, one
// NDJSON line) per completion token, so usage.completion_tokens and
// eval_count equal the number of content chunks.
//
// # Answers
//
// In random mode (the default) an answer is 16 to 64 tokens of pseudo-
// sentences drawn from a small word list, a function of the seed, the model
// name as requested and the prompt only: the same request gives the same
// text. A request's own seed ("seed" in OpenAI, options.seed in Ollama)
// replaces the server's --seed. In echo mode the answer is the last user
// message (or the prompt). Stop sequences ("stop", options.stop) cut the
// answer before the first one found, with finish_reason "stop"; max_tokens,
// max_completion_tokens and options.num_predict cut it with finish_reason
// (done_reason) "length", and so does the context left after the prompt.
// OpenAI requests whose prompt plus max_tokens exceed --max-model-len get
// 400, as in vLLM; Ollama requests are cut at the context instead, unless
// the prompt alone fills it.
//
// Canned answers: when the last user message (or the prompt) contains
// [[gatecheck:say <text>]], the answer is exactly <text>, in either mode,
// tokenised and streamed like any answer. Scenarios use it to make the model
// say something precise, for example a card number that a response policy
// must mask.
//
// # Load and latency
//
// --max-num-seqs requests run at once; the others wait in a first-in,
// first-out queue. A running request waits --time-to-first-token before its
// first token and --inter-token-latency between tokens (each plus seeded
// gaussian jitter, never negative) and holds its slot until its last token.
// A client that goes away frees its slot or queue place at once. At most
// --max-loras distinct adapters run at once; a request for another adapter
// waits (it shows in waiting_lora_adapters) while later requests that fit
// may start. KV cache usage is the tokens held by running requests (prompt
// plus tokens generated so far) over --kv-cache-size × 16.
//
// # GraphQL
//
// /graphql serves [GraphQLSchema] (also the file schema.graphql, for
// policies that verify queries against it): Query.models lists the models as
// GET /v1/models does, Query.model(id) finds one (null when unknown),
// Model.adapters lists the LoRA adapters whose parent is the model (so
// models { adapters { adapters { ... } } } nests as deep as a client likes,
// with empty lists below the first level), Query.server gives the pod, the
// namespace and the running and waiting counts, and Mutation.chat(model,
// prompt, maxTokens, seed) runs the generation POST /v1/chat/completions runs
// for one user message with that content: the same checks and messages, the
// same text, usage and finish reason for the same seed, a running slot held
// until the last token, no streaming. Its failures are field errors whose
// extensions carry the status and OpenAI error type the chat endpoint would
// have answered with ({"code":"NotFoundError","status":404}); chat is
// non-null, so a failed chat makes data null.
//
// Requests: GET /graphql?query=&operationName=&variables= (queries only; a
// mutation gets 405), POST with Content-Type application/json
// {"query","operationName","variables"}, or POST application/graphql whose
// body is the query (operationName and variables may then come in the URL).
// Other methods get 405, other content types 415. Queries are parsed and
// validated with github.com/vektah/gqlparser/v2 against the schema (all the
// specification's rules: unknown fields, wrong argument types, unused or
// undefined variables, fragment cycles, introspection nested more than three
// lists deep are refused), then run by a small executor of the package's
// own: selection sets, arguments and variables (coerced as the specification
// says, Int within 32 bits), aliases, named and inline fragments, fields
// merged by response key, @skip and @include (@defer is accepted and
// ignored), __typename, null propagation from non-null fields, and mutation
// fields one after another. Introspection (__schema, __type) is answered in
// full from the loaded schema, built-in scalars, directives and
// introspection types included, types and directives sorted by name.
//
// Answers follow GraphQL over HTTP: {"errors":[{"message","locations",
// "path","extensions"}],"data":...}, errors first, as application/json, or
// application/graphql-response+json when the Accept header names it. A
// request that cannot run gets 400 with errors and no data — a malformed
// body, a syntax or validation error, no operation or an unknown
// operationName, variables that do not coerce, or a limit below — whatever
// the media type, as Apollo Server does (the specification would have 200
// for application/json). A request that runs gets 200 with data, null where
// fields failed, and their errors. X-Return-Error and a closed server answer
// as on the other endpoints, in the GraphQL shape.
//
// Limits, so that a hostile query cannot exhaust the server when the
// gateway's GraphQL policy lets it through: at most 15000 tokens in the
// document (and gqlparser's own nesting limit of 1000), fields at most 64
// levels deep ({ models } is depth 1), at most 10000 selections once
// fragments are expanded, checked before anything runs, and at most 10000
// fields resolved, list elements counted, during execution. Going past one
// is a request error, for example `Query is too deep: field "adapters" is
// at depth 65, and this server allows 64.`.
//
// # Errors
//
// An unknown model gets 404 in the API's own shape: OpenAI
// {"error":{"message":"The model `x` does not exist.","type":"NotFoundError",
// "param":null,"code":404}}, Ollama {"error":"model \"x\" not found, try
// pulling it first"}. Malformed JSON gets 400 naming the problem, a body over
// 16 MiB gets 413. --failure-injection-rate percent of completion requests
// fail with 429, 500 or 503 (seeded), and the request header
// X-Return-Error: <code> forces that status; both answer in the API's own
// error shape.
package model
