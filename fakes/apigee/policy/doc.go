// Package policy holds the policies of the fake Apigee runtime, one file per
// kind. Each is parsed from Apigee's policy XML (Parse dispatches on the root
// element through a table, parsers), validated with errors that name the
// policy and the element (`Quota "Q-1": <Allow>: count "abc" is not an
// integer`), and applied to a request or response with
// Apply(ctx, *Message) (*Fault, error): a nil fault carries on, a fault is
// Apigee's refusal (faults.go holds every status, error code and fault
// string in one table, FaultTable), an error is a failure of the runtime.
//
// Parsing is strict: an element or attribute a kind does not know is an
// error naming it and listing the supported ones (Apigee rejects unknown
// elements at deployment too; silently ignoring a typo in a security policy
// would be worse). Every kind accepts DisplayName, Description, Properties
// and the root attributes name (required), enabled (false: Apply does
// nothing), continueOnError (true: a fault is recorded in
// gatecheck.fault.{name} and the flow goes on) and async (ignored).
//
// Flow variables live in Message.Vars; Lookup and Resolve read them and the
// message (request.header.X, request.queryparam.X, request.formparam.X,
// request.verb, request.path, proxy.pathsuffix, request.uri,
// request.querystring, request.content, client.ip, response.status.code,
// response.header.X, response.content, message.content). Templates
// substitute {variable} and {jsonPath('$.a.b[0]',variable,true)}; JSONPath
// supports .name, ['name'], [N] (negative from the end), [*] and .*;
// several matches are joined with newlines.
//
// # Policies
//
// VerifyAPIKey (verify_api_key.go) — <APIKey ref="request.header.x-api-key"/>
// (or any variable, e.g. request.queryparam.apikey). The key must be a known
// credential; then, in order: the credential approved, not expired, its app
// approved, its developer active; then one of the credential's approved
// products must grant the request (authz.go: operationGroup resource and
// methods, or llmOperationGroup resource, methods and model; a product with
// neither group grants by its apiResources and proxies, everything when it
// lists none); then the product's tier rules. Sets
// verifyapikey.{name}.client_id, .status, .issued_at, .expires_at,
// .developer.email, .developer.id, .developer.{attr}, .app.name, .app.id,
// .developer.app.name, .developer.app.id, .app.{attr}, .apiproduct.name,
// .apiproduct.{attr}, .apiproduct.developer.quota.limit/.interval/.timeunit
// (the operation config's quota, else the product's), .apiproduct.developer
// .llmQuota.limit/.interval/.timeunit (the LLM config's token quota), the
// gatecheck scopes .apiproduct.developer.quota.scope and .llmQuota.scope,
// .failed on a refusal; the generic client_id, developer.email,
// developer.id, developer.app.name, developer.app.id, apiproduct.name; the
// identity the runtime forwards, gatecheck.identity.app, .developer,
// .product; and gatecheck.credential.header (or .queryparam) naming where
// the key was, so the runtime can drop it. Secrets never become variables.
//
// OAuthV2 (oauthv2.go) — <Operation>GenerateAccessToken</Operation> with
// <SupportedGrantTypes><GrantType>client_credentials</GrantType>,
// <ExpiresIn ref="">ms</ExpiresIn> (default 3600000, -1 never), <GrantType>
// (variable, default request.formparam.grant_type), <Scope> (variable,
// default request.formparam.scope), <GenerateResponse enabled=""/> (default
// true). Client credentials come from HTTP Basic, else the form fields
// client_id and client_secret. The answer is Message.Answer (200, the JSON of
// apigeeapi.AccessToken); without a generated response the token is in
// oauthv2accesstoken.{name}.access_token. Sets
// oauthv2accesstoken.{name}.client_id, .expires_in, .issued_at, .scope,
// .token_type.
// <Operation>VerifyAccessToken</Operation> with <Scope>a b</Scope> (all
// required) and <AccessToken> (variable; default the Authorization Bearer
// token). Sets the consumer variables of VerifyAPIKey without a prefix
// (client_id, developer.email, apiproduct.name, apiproduct.developer.quota.*
// ...) plus scope, issued_at, expires_in, token_type, grant_type,
// organization_name, gatecheck.identity.* and gatecheck.credential.header.
//
// VerifyJWT (verify_jwt.go) — <Algorithm>RS256|ES256</Algorithm>,
// <PublicKey> with <JWKS uri="..."/> (fetched with Env.HTTPClient, cached
// JWKSCacheTTL, an unknown kid refetches at most every JWKSRefetchInterval,
// the last good set is kept if the issuer is away), inline <JWKS>{...}</JWKS>,
// or <Value>PEM</Value>; <Issuer>, <Audience>, <Subject>, <TimeAllowance>
// (30s, 5m, 1h, 1d, 500ms or plain ms), <Source> (default
// request.header.authorization, "Bearer " removed),
// <IgnoreUnresolvedVariables>. Checks exp, nbf and iat (not in the future)
// with the allowance. Sets jwt.{name}.valid, .decoded.claim.{claim},
// .decoded.header.{header}, .claim.issuer/.subject/.audience/.expiry
// /.issuedat/.notbefore/.names, .header.algorithm, .header.kid,
// .payload-json; on a refusal jwt.{name}.valid=false, jwt.{name}.error and
// JWT.failed=true.
//
// AccessControl (access_control.go) — <IPRules noRuleMatchAction="ALLOW|DENY">
// with <MatchRule action="ALLOW|DENY"><SourceAddress mask="24">10.0.0.0
// </SourceAddress>...</MatchRule> (IPv4 or IPv6; CIDR text also accepted);
// the first matching rule wins. <ValidateBasedOn> X_FORWARDED_FOR_ALL_IP,
// X_FORWARDED_FOR_FIRST_IP or X_FORWARDED_FOR_LAST_IP checks the
// X-Forwarded-For addresses (all must pass) instead of client.ip.
//
// Quota (quota.go, window.go) — type absent (windows aligned to the top of
// the minute, hour, day (UTC), Sunday, month), calendar (from <StartTime>,
// required, "2026-01-01 00:00:00" UTC), rollingwindow (the last interval, in
// 60 sub-buckets), flexi (from the identifier's first request);
// <Identifier ref=""/> (default one counter, "_default"); <Allow count=""
// countRef=""/> (a ref resolving to an integer wins); <Interval ref="">,
// <TimeUnit ref="">minute|hour|day|week|month</TimeUnit>;
// <MessageWeight ref=""/> (a variable or template; unresolved is 1; not a
// non-negative integer is InvalidMessageWeight); <EnforceOnly>, <CountOnly>;
// <SharedName> (policies with the same SharedName share counters);
// <Distributed>, <Synchronous>, <AsynchronousConfiguration> accepted (all
// counters are in the store: always distributed and synchronous). A limit
// from a product (countRef ending in .limit whose .scope sibling is set)
// counts per app key and product, and per operation config when the config
// has its own quota or the product's quotaCounterScope is OPERATION. Sets
// ratelimit.{name}.allowed.count, .used.count, .available.count,
// .exceed.count, .expiry.time (ms), .identifier, .failed.
//
// SpikeArrest (spike_arrest.go) — <Rate ref="">10ps|600pm</Rate>,
// <Identifier ref=""/>, <MessageWeight ref=""/>, <UseEffectiveCount>.
// Without UseEffectiveCount one request per 1/N of the period (10ps: per
// 100 ms); with it a sliding count of N per second or minute. Sets
// ratelimit.{name}.failed.
//
// LLMTokenQuota (llm_token_quota.go) — the Quota elements (but MessageWeight)
// plus <LLMTokenUsageSource> (default
// {jsonPath('$.usage.total_tokens',response.content,true)}; when not an
// integer, TokenUsage reads the answer: OpenAI JSON or SSE, Ollama JSON or
// NDJSON) and <LLMModelSource> (default
// {jsonPath('$.model',request.content,true)}; part of the counter key).
// EnforceOnly on the request checks the budget, CountOnly on the response
// counts the tokens; with neither, the phase decides. Sets the ratelimit
// variables, llmtokenquota.{name}.tokens and .usage.found.
//
// PromptTokenLimit (prompt_token_limit.go) — <Identifier ref=""/>,
// <Rate ref="">1000pm</Rate> (prompt tokens per second or minute, a sliding
// count), <UserPromptSource> (default
// {jsonPath('$.messages[-1].content',request.content,true)}), counted with
// CountTokens. Sets prompttokenlimit.{name}.tokens, .used.count,
// .allowed.count, .failed.
//
// # Threat protection
//
// The wrappers around the engines of fakes/apigee/threat. Each accepts the
// gatecheck extension <FaultStatus>NNN</FaultStatus> (400 to 599), standing
// in for the FaultRule an Apigee proxy uses to change a fault's status.
// Without it a refused request is 400 (gatecheck's choice; Apigee's own
// default for JSON and regular-expression threats is 500) and a refused
// response is 500 (Apigee's). <Source> is request, response or message
// (the phase's message; the default).
//
// JSONThreatProtection (json_threat_protection.go) — <ContainerDepth>,
// <ObjectEntryCount>, <ArrayElementCount>, <ObjectEntryNameLength>,
// <StringValueLength> (absent, zero or negative: no limit), checked by a
// streaming scanner on a JSON message only (application/json, +json).
// Invalid JSON is a violation. 400 steps.jsonthreatprotection.ExecutionFailed
// with Apigee's faultstring naming the limit and the line. Sets
// jsonthreatprotection.{name}.failed and .limit.
//
// RegularExpressionProtection (regex_protection.go) — <URIPath>,
// <QueryParam name="">, <Header name="">, <FormParam name="">,
// <Variable name="">, <JSONPayload><JSONPath><Expression>,
// <XMLPayload><XPath><Expression>, each with <Pattern>s (Java regular
// expressions, translated by threat.TranslateJavaRegex; one that cannot run
// on RE2 is a parse error naming the element, the pattern and why);
// name="*" tests every parameter or header (gatecheck);
// <IgnoreUnresolvedVariables>. JSON, XML and form rules apply to bodies of
// their type only. 400 steps.regexprotection.ThreatDetected, ExecutionFailed
// (a payload that does not parse), VariableResolutionFailed. Sets
// regularexpressionprotection.{name}.failed and .target.
//
// GraphQL (graphql.go) — <Action>parse|verify|parse_verify</Action>,
// <OperationType>query|mutation|query_mutation</OperationType>,
// <MaxDepth>, <MaxCount>, <MaxPayloadSizeInBytes>, <ResourceURL>graphql://NAME
// </ResourceURL> (graphql://gatecheck-models.graphql, alias
// graphql://schema.graphql, is the fake model server's schema;
// Env.GraphQLSchemas adds more). It checks GraphQL requests only — path
// ending in /graphql, or Content-Type application/graphql — and passes
// every other request untouched, since one flow serves every route of the
// Gateway. 400 steps.graphql.MaxDepthExceeded, MaxCountExceeded,
// OperationTypeNotAllowed, SchemaValidationFailed, MaxPayloadSizeExceeded,
// InvalidPayload. Sets graphql.{name}.failed.
//
// SanitizeUserPrompt (sanitize_user_prompt.go) and SanitizeModelResponse
// (sanitize_model_response.go) — the local stand-in for Model Armor
// (model_armor.go). <ModelArmor><TemplateName> names a template (alone or
// as projects/P/locations/L/templates/NAME; default "default"): default,
// strict, pii-only or prompt-attacks, each a detector profile whose
// matches block or are masked and whose reported findings are only
// recorded. <UserPromptSource> / <LLMResponseSource> are templates for the
// text; without them the policies read OpenAI and Ollama requests (every
// message role) and answers (streamed or whole) themselves.
// <IgnoreUnresolvedVariables>: an unresolved source is otherwise
// steps.sanitizeuserprompt.UnresolvedVariable (400) or
// steps.sanitizemodelresponse.UnresolvedVariable (500). <Action> (gatecheck):
// SanitizeUserPrompt block (400 steps.sanitizeuserprompt.MatchFound, the
// default) or flag (variables only); SanitizeModelResponse redact (the
// default: matches become [REDACTED_CREDIT_CARD] and the like, chunk by chunk
// in a stream), block (500 steps.sanitizemodelresponse.MatchFound; a
// streamed answer is ended with the text before the match and an error
// event, see StreamErrorFrame) or flag. Both set, under
// sanitizeuserprompt.{name}. and sanitizemodelresponse.{name}., Model
// Armor's result as variables: filterMatchState (MATCH_FOUND or
// NO_MATCH_FOUND), invocationResult, filterResults.{pi_and_jailbreak,
// malicious_uris,sdp,rai}.matchState, matchCount, matches (filter:kind
// pairs), reportedCount, reported, templateName and action (blocked,
// flagged, redacted or none). Model Armor's SanitizationResult fields are
// the model; Apigee's own variable names for these policies were not
// available to confirm.
//
// Response filters. Policies that must act on an answer before the client
// has it implement ResponseFilter: SanitizeModelResponse (block, redact),
// and JSONThreatProtection and RegularExpressionProtection checking the
// response. The runtime gives them the answer chunk by chunk (see
// ChunkFilter and fakes/apigee); continueOnError="true" turns a filter into
// a check at the end of the answer that only records its fault.
//
// DefaultSecurity (default_security.go) returns the operator's default
// flow for defaultSecurityEnabled: VerifyAPIKey on x-api-key, the product
// Quota, and the LLM token quota pair.
//
// # Tiers
//
// Product attributes named gatecheck.tier.* gate model features (a
// gatecheck extension; with real Apigee the same is a Condition and a
// RaiseFault). The matched operation config's attributes override the
// product's. After the product matched, VerifyAPIKey and VerifyAccessToken
// evaluate, in this order:
//
//	gatecheck.tier.models = qwen*,llama3   the request's "model" must match a pattern ("*": any run)
//	gatecheck.tier.stream = false          no "stream": true (Ollama's /api/chat and /api/generate
//	                                       stream unless "stream": false)
//	gatecheck.tier.max_tokens = 512        max_tokens, max_completion_tokens, options.num_predict ≤ 512
//	gatecheck.tier.tools = false           no non-empty "tools" or "functions"
//
// A rule a request does not touch passes (no model, no max_tokens); a body
// that is not a JSON object passes every rule. The first broken rule is 403
// gatecheck.tier.ModelNotAllowed, StreamingNotAllowed, MaxTokensExceeded or
// ToolsNotAllowed. Unknown gatecheck.tier.* names and bad values are errors
// (ParseTier lets the management API refuse them up front).
package policy
