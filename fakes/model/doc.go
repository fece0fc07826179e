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
