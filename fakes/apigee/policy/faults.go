package policy

import (
	"fmt"
	"net/http"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// FaultDef is one kind of refusal a policy can answer with: its HTTP status,
// Apigee's error code and the fault string (a fmt format; the arguments are
// documented beside each entry). Source says where the spelling comes from.
type FaultDef struct {
	Status      int
	Code        string
	FaultString string
	// Source is "apigee-docs" (Apigee's policy reference or troubleshooting
	// pages), "apigee-code" (Apigee's own open-source runtimes), "observed"
	// (answers of real Apigee seen in public samples), "unconfirmed" (the
	// documented neighbour; no primary source found) or "gatecheck" (our
	// own; Apigee has no such built-in).
	Source string
}

// fault renders the definition with its fault-string arguments.
func (d *FaultDef) fault(args ...any) *Fault {
	s := d.FaultString
	if len(args) > 0 {
		s = fmt.Sprintf(d.FaultString, args...)
	}
	return &Fault{Status: d.Status, Code: d.Code, FaultString: s}
}

// The fault table. Every refusal of every policy is one of these; change a
// spelling here and it changes everywhere (and in FaultTable, which the docs
// and the conformance report list).
var (
	// VerifyAPIKey. Arg: the APIKey ref.
	faultAPIKeyMissing = &FaultDef{http.StatusUnauthorized, "steps.oauth.v2.FailedToResolveAPIKey",
		"Failed to resolve API Key variable %s", "observed"}
	faultAPIKeyInvalid = &FaultDef{http.StatusUnauthorized, "oauth.v2.InvalidApiKey",
		"Invalid ApiKey", "observed"}
	faultAPIKeyForResource = &FaultDef{http.StatusUnauthorized, "oauth.v2.InvalidApiKeyForGivenResource",
		"Invalid ApiKey for given resource", "observed"}
	// The credential (key) is revoked or pending.
	faultAPIKeyNotApproved = &FaultDef{http.StatusUnauthorized, "oauth.v2.ApiKeyNotApproved",
		"ApiKey not approved", "apigee-code"}
	faultAPIKeyExpired = &FaultDef{http.StatusUnauthorized, "keymanagement.service.consumer_key_expired",
		"Consumer key is expired", "unconfirmed"}
	// The app is revoked or pending.
	faultAppNotApproved = &FaultDef{http.StatusUnauthorized, "keymanagement.service.invalid_client-app_not_approved",
		"Application is not approved", "apigee-code"}
	// The developer is inactive.
	faultDeveloperInactive = &FaultDef{http.StatusUnauthorized, "keymanagement.service.DeveloperStatusNotActive",
		"Developer Status is not Active", "observed"}

	// OAuthV2 VerifyAccessToken.
	faultTokenMissing = &FaultDef{http.StatusUnauthorized, "oauth.v2.InvalidAccessToken",
		"Invalid access token", "observed"}
	faultTokenInvalid = &FaultDef{http.StatusUnauthorized, "keymanagement.service.invalid_access_token",
		"Invalid Access Token", "observed"}
	faultTokenExpired = &FaultDef{http.StatusUnauthorized, "keymanagement.service.access_token_expired",
		"Access Token expired", "observed"}
	// The token's credential, app or developer is no longer approved/active.
	faultTokenNotApproved = &FaultDef{http.StatusUnauthorized, "keymanagement.service.access_token_not_approved",
		"Access Token not approved", "unconfirmed"}
	faultTokenNoProduct = &FaultDef{http.StatusUnauthorized, "keymanagement.service.InvalidAPICallAsNoApiProductMatchFound",
		"Invalid API call as no apiproduct match found", "observed"}
	// Arg: the required scopes, space separated.
	faultInsufficientScope = &FaultDef{http.StatusForbidden, "steps.oauth.v2.InsufficientScope",
		"Required scope(s) : %s", "apigee-docs"}

	// OAuthV2 GenerateAccessToken. Real Apigee answers these in its OAuth
	// shape ({"ErrorCode":"invalid_client","Error":"..."}); the fake keeps
	// the fault JSON of every other refusal.
	faultClientInvalid = &FaultDef{http.StatusUnauthorized, "steps.oauth.v2.invalid_client",
		"Client credentials are invalid", "apigee-docs"}
	faultClientMissing = &FaultDef{http.StatusUnauthorized, "steps.oauth.v2.invalid_client",
		"Client credentials are missing", "unconfirmed"}
	faultGrantTypeMissing = &FaultDef{http.StatusBadRequest, "steps.oauth.v2.invalid_request",
		"Missing grant_type", "unconfirmed"}
	// Arg: the grant type asked for.
	faultUnsupportedGrantType = &FaultDef{http.StatusBadRequest, "steps.oauth.v2.unsupported_grant_type",
		"Unsupported grant type : %s", "unconfirmed"}
	// Arg: the scope asked for that the products do not have.
	faultInvalidScope = &FaultDef{http.StatusBadRequest, "steps.oauth.v2.invalid_scope",
		"Invalid scope : %s", "unconfirmed"}

	// VerifyJWT. Arg: the policy name (and for the first, the Source).
	faultJWTMissing = &FaultDef{http.StatusUnauthorized, "steps.jwt.FailedToResolveVariable",
		"Failed to Resolve Variable : policy(%s) variable(%s)", "apigee-docs"}
	faultJWTDecode = &FaultDef{http.StatusUnauthorized, "steps.jwt.FailedToDecode",
		"Failed to Decode Token: policy(%s)", "apigee-docs"}
	faultJWTJSON = &FaultDef{http.StatusUnauthorized, "steps.jwt.InvalidJsonFormat",
		"Invalid JSON format: policy(%s)", "apigee-docs"}
	faultJWTNoAlgorithm = &FaultDef{http.StatusUnauthorized, "steps.jwt.NoAlgorithmFoundInHeader",
		"No algorithm found in header: policy(%s)", "apigee-docs"}
	faultJWTAlgorithm = &FaultDef{http.StatusUnauthorized, "steps.jwt.AlgorithmMismatch",
		"Algorithm mismatch: policy(%s)", "apigee-docs"}
	faultJWTKeyIDMissing = &FaultDef{http.StatusUnauthorized, "steps.jwt.KeyIdMissing",
		"No key id (kid) in the token header: policy(%s)", "apigee-docs"}
	faultJWTNoKey = &FaultDef{http.StatusUnauthorized, "steps.jwt.NoMatchingPublicKey",
		"No matching public key: policy(%s)", "apigee-docs"}
	// The signature does not verify. Apigee documents InvalidToken for this.
	faultJWTSignature = &FaultDef{http.StatusUnauthorized, "steps.jwt.InvalidToken",
		"Invalid Token: policy(%s)", "apigee-docs"}
	faultJWTExpired = &FaultDef{http.StatusUnauthorized, "steps.jwt.TokenExpired",
		"The Token has expired: policy(%s)", "apigee-docs"}
	faultJWTNotYetValid = &FaultDef{http.StatusUnauthorized, "steps.jwt.TokenNotYetValid",
		"The Token is not yet valid: policy(%s)", "apigee-docs"}
	faultJWTIssuer = &FaultDef{http.StatusUnauthorized, "steps.jwt.JwtIssuerMismatch",
		"Issuer mismatch: policy(%s)", "apigee-docs"}
	faultJWTAudience = &FaultDef{http.StatusUnauthorized, "steps.jwt.JwtAudienceMismatch",
		"Audience mismatch: policy(%s)", "apigee-docs"}
	faultJWTSubject = &FaultDef{http.StatusUnauthorized, "steps.jwt.JwtSubjectMismatch",
		"Subject mismatch: policy(%s)", "apigee-docs"}

	// AccessControl. Arg: the client address.
	faultIPDenied = &FaultDef{http.StatusForbidden, "accesscontrol.IPDeniedAccess",
		"Access Denied for client ip : %s", "observed"}

	// Quota. Arg: the identifier ("_default" without one). The double space
	// is Apigee's.
	faultQuotaViolation = &FaultDef{http.StatusTooManyRequests, "policies.ratelimit.QuotaViolation",
		"Rate limit quota violation. Quota limit  exceeded. Identifier : %s", "observed"}
	// Arg: the value.
	faultInvalidMessageWeight = &FaultDef{http.StatusInternalServerError, "policies.ratelimit.InvalidMessageWeight",
		"Invalid message weight value %s", "apigee-docs"}
	// Arg: the policy name.
	faultQuotaIntervalRef = &FaultDef{http.StatusInternalServerError, "policies.ratelimit.FailedToResolveQuotaIntervalReference",
		"Failed to resolve quota interval reference: policy(%s)", "apigee-docs"}
	faultQuotaTimeUnitRef = &FaultDef{http.StatusInternalServerError, "policies.ratelimit.FailedToResolveQuotaIntervalTimeUnitReference",
		"Failed to resolve quota time unit reference: policy(%s)", "apigee-docs"}
	faultQuotaAllowRef = &FaultDef{http.StatusInternalServerError, "policies.ratelimit.FailedToResolveAllowCountReference",
		"Failed to resolve allow count reference: policy(%s)", "unconfirmed"}

	// SpikeArrest. Args: messages per period, the period in microseconds,
	// the burst (Java's double formatting).
	faultSpikeArrest = &FaultDef{http.StatusTooManyRequests, "policies.ratelimit.SpikeArrestViolation",
		"Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=%d, periodInMicroseconds=%d, maxBurstMessageCount=%s}", "observed"}
	// Arg: the rate as resolved.
	faultSpikeArrestRate = &FaultDef{http.StatusInternalServerError, "policies.ratelimit.InvalidAllowedRate",
		"Invalid spike arrest rate %s", "unconfirmed"}

	// LLMTokenQuota. Arg: the identifier.
	faultLLMTokenQuota = &FaultDef{http.StatusTooManyRequests, "policies.llmtokenquota.LLMTokenQuotaViolation",
		"LLM token quota violation. Token limit exceeded. Identifier : %s", "unconfirmed"}

	// PromptTokenLimit. Args: the rate, the identifier.
	faultPromptTokenLimit = &FaultDef{http.StatusTooManyRequests, "policies.prompttokenlimit.PromptTokenLimitViolation",
		"Prompt token limit violation. Allowed rate : %s. Identifier : %s", "unconfirmed"}

	// Threat protection. The status is gatecheck's default for a refused
	// request, 400; Apigee's own is 500 unless a FaultRule changes it, and
	// a refused response is 500 here too. A policy's <FaultStatus> (a
	// gatecheck extension standing in for the FaultRule) overrides both.
	// The fault string comes from the engine (fakes/apigee/threat); the
	// formats here document its shape.
	//
	// JSONThreatProtection. Args: the policy name (twice), the limit ("Exceeded
	// container depth", "Invalid JSON object: ..."), the line.
	faultJSONThreat = &FaultDef{http.StatusBadRequest, "steps.jsonthreatprotection.ExecutionFailed",
		"JSONThreatProtection[%s]: Execution failed. reason: JSONThreatProtection[%s]: %s at line %d", "apigee-docs"}
	// RegularExpressionProtection. Args: the policy name, the pattern, the
	// input that matched (cut to 512 bytes).
	faultRegexThreat = &FaultDef{http.StatusBadRequest, threat.RegexThreatDetected,
		"Regular Expression Threat Detected in %s: regex: %s input: %s", "apigee-docs"}
	// Args: the policy name, the reason (a payload that does not parse).
	faultRegexExecution = &FaultDef{http.StatusBadRequest, threat.RegexExecutionFailed,
		"Failed to execute the RegularExpressionProtection StepDefinition %s. Reason: %s", "apigee-docs"}
	// Arg: the variable.
	faultRegexVariable = &FaultDef{http.StatusBadRequest, threat.RegexVariableResolutionFailed,
		"Failed to resolve variable %s", "apigee-docs"}
	// GraphQL. Arg: the detail. The first four codes are the ones public
	// walkthroughs of the policy show; the last two are gatecheck's names.
	faultGraphQLDepth = &FaultDef{http.StatusBadRequest, threat.GraphQLMaxDepthExceeded,
		"Payload depth exceeds the size set in the policy: %s", "observed"}
	faultGraphQLCount = &FaultDef{http.StatusBadRequest, threat.GraphQLMaxCountExceeded,
		"Max count mentioned in the policy has exceeded: %s", "observed"}
	faultGraphQLOperation = &FaultDef{http.StatusBadRequest, threat.GraphQLOperationTypeNotAllowed,
		"Operation type not allowed: %s", "observed"}
	faultGraphQLSchema = &FaultDef{http.StatusBadRequest, threat.GraphQLSchemaValidationFailed,
		"Payload failed schema validation: %s", "observed"}
	faultGraphQLPayloadSize = &FaultDef{http.StatusBadRequest, threat.GraphQLMaxPayloadSizeExceeded,
		"Payload size exceeds the size set in the policy: %s", "unconfirmed"}
	faultGraphQLInvalid = &FaultDef{http.StatusBadRequest, threat.GraphQLInvalidPayload,
		"Invalid GraphQL payload: %s", "unconfirmed"}
	// SanitizeUserPrompt and SanitizeModelResponse: Apigee's error reference
	// for these policies was not available; the codes follow Apigee's
	// steps.<policy>.<Error> convention. Args: the policy name, the
	// template, what matched ("sdp (credit_card), pi_and_jailbreak
	// (prompt_injection)"; never the matched text).
	faultPromptMatch = &FaultDef{http.StatusBadRequest, "steps.sanitizeuserprompt.MatchFound",
		"SanitizeUserPrompt[%s]: Model Armor template %s found a match in the user prompt: %s", "unconfirmed"}
	// Args: the policy name, the UserPromptSource.
	faultPromptUnresolved = &FaultDef{http.StatusBadRequest, "steps.sanitizeuserprompt.UnresolvedVariable",
		"SanitizeUserPrompt[%s]: UserPromptSource %s did not resolve", "unconfirmed"}
	// A refused answer: 500, as Apigee answers response-flow faults.
	faultResponseMatch = &FaultDef{http.StatusInternalServerError, "steps.sanitizemodelresponse.MatchFound",
		"SanitizeModelResponse[%s]: Model Armor template %s found a match in the model response: %s", "unconfirmed"}
	faultResponseUnresolved = &FaultDef{http.StatusInternalServerError, "steps.sanitizemodelresponse.UnresolvedVariable",
		"SanitizeModelResponse[%s]: LLMResponseSource %s did not resolve", "unconfirmed"}

	// Tiers (product attributes gatecheck.tier.*). Apigee has no such
	// built-in; an Apigee proxy would write these with a Condition and a
	// RaiseFault. Args: see tier.go.
	faultTierModel = &FaultDef{http.StatusForbidden, "gatecheck.tier.ModelNotAllowed",
		"Model %s is not allowed by product %s", "gatecheck"}
	faultTierStream = &FaultDef{http.StatusForbidden, "gatecheck.tier.StreamingNotAllowed",
		"Streaming is not allowed by product %s", "gatecheck"}
	faultTierMaxTokens = &FaultDef{http.StatusForbidden, "gatecheck.tier.MaxTokensExceeded",
		"max_tokens %d exceeds %d allowed by product %s", "gatecheck"}
	faultTierTools = &FaultDef{http.StatusForbidden, "gatecheck.tier.ToolsNotAllowed",
		"Tools are not allowed by product %s", "gatecheck"}
)

// FaultTable lists every fault the policies can answer with, in the order
// of the table above.
func FaultTable() []FaultDef {
	defs := []*FaultDef{
		faultAPIKeyMissing, faultAPIKeyInvalid, faultAPIKeyForResource, faultAPIKeyNotApproved,
		faultAPIKeyExpired, faultAppNotApproved, faultDeveloperInactive,
		faultTokenMissing, faultTokenInvalid, faultTokenExpired, faultTokenNotApproved, faultTokenNoProduct, faultInsufficientScope,
		faultClientInvalid, faultClientMissing, faultGrantTypeMissing, faultUnsupportedGrantType, faultInvalidScope,
		faultJWTMissing, faultJWTDecode, faultJWTJSON, faultJWTNoAlgorithm, faultJWTAlgorithm,
		faultJWTKeyIDMissing, faultJWTNoKey, faultJWTSignature, faultJWTExpired, faultJWTNotYetValid,
		faultJWTIssuer, faultJWTAudience, faultJWTSubject,
		faultIPDenied,
		faultQuotaViolation, faultInvalidMessageWeight, faultQuotaIntervalRef, faultQuotaTimeUnitRef, faultQuotaAllowRef,
		faultSpikeArrest, faultSpikeArrestRate,
		faultLLMTokenQuota, faultPromptTokenLimit,
		faultTierModel, faultTierStream, faultTierMaxTokens, faultTierTools,
		faultJSONThreat, faultRegexThreat, faultRegexExecution, faultRegexVariable,
		faultGraphQLDepth, faultGraphQLCount, faultGraphQLOperation, faultGraphQLSchema, faultGraphQLPayloadSize, faultGraphQLInvalid,
		faultPromptMatch, faultPromptUnresolved, faultResponseMatch, faultResponseUnresolved,
	}
	out := make([]FaultDef, len(defs))
	for i, d := range defs {
		out[i] = *d
	}
	return out
}

// graphQLFaults maps the GraphQL engine's codes to the table.
var graphQLFaults = map[string]*FaultDef{
	threat.GraphQLMaxDepthExceeded:        faultGraphQLDepth,
	threat.GraphQLMaxCountExceeded:        faultGraphQLCount,
	threat.GraphQLOperationTypeNotAllowed: faultGraphQLOperation,
	threat.GraphQLSchemaValidationFailed:  faultGraphQLSchema,
	threat.GraphQLMaxPayloadSizeExceeded:  faultGraphQLPayloadSize,
	threat.GraphQLInvalidPayload:          faultGraphQLInvalid,
}
