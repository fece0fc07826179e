package policy

// The names of the policies of the operator's default security, as they
// appear in flow variables (verifyapikey.default-verify-api-key.client_id,
// ratelimit.default-quota.used.count).
const (
	DefaultVerifyAPIKeyName  = "default-verify-api-key"
	DefaultQuotaName         = "default-quota"
	DefaultLLMTokenQuotaName = "default-llm-token-quota"
	DefaultLLMTokenCountName = "default-llm-token-quota-count"
)

const (
	defaultAPIKeyRef            = "request.header.x-api-key"
	defaultProductQuotaVariable = "verifyapikey." + DefaultVerifyAPIKeyName + ".apiproduct.developer."
)

// DefaultSecurity returns the flow the Apigee Operator adds for an
// APIMExtensionPolicy with defaultSecurityEnabled: true.
//
// Request flow:
//  1. VerifyAPIKey on request.header.x-api-key (DefaultVerifyAPIKeyName).
//  2. A flexi Quota (DefaultQuotaName) whose limit, interval and time unit
//     are the matched operation config's quota (else the product's legacy
//     quota), counted per app key and operation config. A product without a
//     quota is not limited.
//  3. The LLMTokenQuota check (DefaultLLMTokenQuotaName, EnforceOnly) of the
//     matched llmOperationGroup config's llmTokenQuota, per app key, config
//     and model; skipped when the config has none.
//
// Response flow:
//  1. The LLMTokenQuota count (DefaultLLMTokenCountName, CountOnly) of the
//     tokens the answer used, sharing the check's counter.
//
// The windows are flexi (they start at an app's first request), so a
// scenario's "N requests, then one too many" does not depend on where the
// wall clock is within the minute. The fault's identifier is "_default", as
// the operator's answers show.
func DefaultSecurity(env Env) (request, response []Policy) {
	env = env.withDefaults()
	va := NewVerifyAPIKey(DefaultVerifyAPIKeyName, defaultAPIKeyRef, env)
	quota := &Quota{name: DefaultQuotaName, core: quotaCore{
		kind: "Quota", name: DefaultQuotaName, typ: typeFlexi,
		countRef:       defaultProductQuotaVariable + "quota.limit",
		intervalRef:    defaultProductQuotaVariable + "quota.interval",
		unitRef:        defaultProductQuotaVariable + "quota.timeunit",
		skipUnresolved: true, env: env,
	}}
	llm := func(name string, enforce bool) *LLMTokenQuota {
		usage, _ := parseTemplate(defaultUsageSource)
		model, _ := parseTemplate(defaultModelSource)
		return &LLMTokenQuota{name: name, usageSource: usage, modelSource: model, core: quotaCore{
			kind: "LLMTokenQuota", name: name, typ: typeFlexi,
			countRef:       defaultProductQuotaVariable + "llmQuota.limit",
			intervalRef:    defaultProductQuotaVariable + "llmQuota.interval",
			unitRef:        defaultProductQuotaVariable + "llmQuota.timeunit",
			sharedName:     DefaultLLMTokenQuotaName,
			enforceOnly:    enforce,
			countOnly:      !enforce,
			skipUnresolved: true, env: env,
		}}
	}
	return []Policy{va, quota, llm(DefaultLLMTokenQuotaName, true)},
		[]Policy{llm(DefaultLLMTokenCountName, false)}
}
