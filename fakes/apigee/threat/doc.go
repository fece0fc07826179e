// Package threat holds the engines behind gatecheck's fake Apigee threat
// protection: what JSONThreatProtection, RegularExpressionProtection,
// GraphQL, SanitizeUserPrompt and SanitizeModelResponse decide, without the
// XML. The policy wrappers in fakes/apigee/policy parse a policy, call an
// engine here and turn its violation into Apigee's fault; this package does
// not import them.
//
// # Engines
//
//   - JSONLimits.Check streams a body through a byte-level JSON scanner and
//     reports the first limit it breaks (ContainerDepth, ObjectEntryCount,
//     ArrayElementCount, ObjectEntryNameLength, StringValueLength) or that the
//     body is not JSON. It stops at the first violation and never buffers a
//     value.
//   - CompileJSONPath evaluates the JSONPath subset Apigee policies use.
//   - TranslateJavaRegex runs the Java patterns Apigee users write on Go's
//     RE2 engine, or says why a pattern cannot be translated. Rules.Check
//     applies patterns to the parts of a request RegularExpressionProtection
//     names (URI path, query and form parameters, headers, flow variables,
//     JSON and XML payloads), on raw and decoded values. DefaultPatterns
//     ships pattern sets for SQL injection, XSS, server-side includes, XPath
//     injection and command injection, each pattern with its source. A
//     literal prefilter (prefilter.go) skips a pattern whose required
//     literals a value does not hold, without changing any result.
//   - GraphQLLimits.Check applies the GraphQL policy's operation type, depth,
//     fragment count and payload size limits and validates against a schema;
//     ParseGraphQLHTTP takes the request out of GET or POST.
//   - Detectors stand in for Model Armor's filters (prompt injection and
//     jailbreak, malicious URIs, sensitive data, a little responsible-AI);
//     the rules live in the detectors subpackage. UserPrompts finds the text
//     a client sent in OpenAI and Ollama requests.
//   - StreamScanner scans a streamed answer chunk by chunk with the same
//     result as scanning it whole, and ResponseRedactor applies it to an
//     OpenAI server-sent-event or Ollama NDJSON body, keeping every chunk
//     valid JSON.
//   - DefaultProtection puts them together into the set gatecheck uses when a
//     scenario asks for threat protection without configuring it. TestCorpus
//     measures it against the labelled requests in testdata/corpus.
//
// # Faults
//
// Each violation type (JSONViolation, RegexViolation, GraphQLViolation)
// has ErrorCode, the Apigee error code (steps.jsonthreatprotection.ExecutionFailed,
// steps.regexprotection.ThreatDetected, steps.graphql.MaxDepthExceeded, ...),
// and FaultString(policyName), the faultstring Apigee would send. The HTTP
// status is the policy's business: Apigee answers threat faults with 500
// unless a FaultRule says otherwise, and gatecheck defaults to 400.
//
// # Redacting a streamed answer
//
// A SanitizeModelResponse in redact mode feeds the response body to a
// ResponseRedactor as it arrives and sends on what Write returns; at the end
// of the body it sends what Close returns. Each choice's text goes through a
// StreamScanner, which holds back only the tail that could still begin a
// finding (Detectors.HoldBack bytes plus a 256-byte batch). For another
// framing, use StreamScanner directly with SSEDeltas or OllamaDelta and
// RewriteSSEChunk or RewriteOllamaChunk.
//
// In block mode, a StreamScanner reports the first finding as soon as no more
// text can change it; the runtime then ends the stream.
package threat
