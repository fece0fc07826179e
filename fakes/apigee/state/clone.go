package state

import (
	"slices"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// Deep copies of the apigeeapi values the memory store keeps, so a caller can
// never reach into the store through a slice or pointer it was handed.
// clone_test.go fills every field by reflection and fails if a field added to
// apigeeapi is not copied here.
//
// Empty slices of fields tagged omitempty come back nil, as they do from the
// file store's JSON, so both stores answer alike.

// cloneSlice copies s; empty is nil.
func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneAttributes(a []apigeeapi.Attribute) []apigeeapi.Attribute { return cloneSlice(a) }

func cloneDeveloper(d apigeeapi.Developer) apigeeapi.Developer {
	d.Attributes = cloneAttributes(d.Attributes)
	d.Apps = cloneSlice(d.Apps)
	return d
}

func cloneCredential(c apigeeapi.Credential) apigeeapi.Credential {
	c.APIProducts = cloneSlice(c.APIProducts)
	c.Attributes = cloneAttributes(c.Attributes)
	c.Scopes = cloneSlice(c.Scopes)
	return c
}

func cloneApp(a apigeeapi.DeveloperApp) apigeeapi.DeveloperApp {
	a.APIProducts = cloneSlice(a.APIProducts)
	a.Attributes = cloneAttributes(a.Attributes)
	a.Scopes = cloneSlice(a.Scopes)
	var creds []apigeeapi.Credential
	if len(a.Credentials) > 0 {
		creds = make([]apigeeapi.Credential, len(a.Credentials))
		for i, c := range a.Credentials {
			creds[i] = cloneCredential(c)
		}
	}
	a.Credentials = creds
	return a
}

func cloneQuota(q *apigeeapi.Quota) *apigeeapi.Quota {
	if q == nil {
		return nil
	}
	c := *q
	return &c
}

func cloneOperations(ops []apigeeapi.Operation) []apigeeapi.Operation {
	if ops == nil {
		return nil
	}
	out := make([]apigeeapi.Operation, len(ops))
	for i, op := range ops {
		op.Methods = cloneSlice(op.Methods)
		out[i] = op
	}
	return out
}

func cloneLLMOperations(ops []apigeeapi.LLMOperation) []apigeeapi.LLMOperation {
	if ops == nil {
		return nil
	}
	out := make([]apigeeapi.LLMOperation, len(ops))
	for i, op := range ops {
		op.Methods = cloneSlice(op.Methods)
		out[i] = op
	}
	return out
}

func cloneProduct(p apigeeapi.APIProduct) apigeeapi.APIProduct {
	p.Attributes = cloneAttributes(p.Attributes)
	p.Environments = cloneSlice(p.Environments)
	p.Proxies = cloneSlice(p.Proxies)
	p.APIResources = cloneSlice(p.APIResources)
	p.Scopes = cloneSlice(p.Scopes)
	if g := p.OperationGroup; g != nil {
		ng := *g
		if g.OperationConfigs != nil {
			ng.OperationConfigs = make([]apigeeapi.OperationConfig, len(g.OperationConfigs))
			for i, oc := range g.OperationConfigs {
				oc.Operations = cloneOperations(oc.Operations)
				oc.Quota = cloneQuota(oc.Quota)
				oc.Attributes = cloneAttributes(oc.Attributes)
				ng.OperationConfigs[i] = oc
			}
		}
		p.OperationGroup = &ng
	}
	if g := p.LLMOperationGroup; g != nil {
		ng := *g
		if g.OperationConfigs != nil {
			ng.OperationConfigs = make([]apigeeapi.LLMOperationConfig, len(g.OperationConfigs))
			for i, oc := range g.OperationConfigs {
				oc.LLMOperations = cloneLLMOperations(oc.LLMOperations)
				oc.LLMTokenQuota = cloneQuota(oc.LLMTokenQuota)
				oc.Attributes = cloneAttributes(oc.Attributes)
				ng.OperationConfigs[i] = oc
			}
		}
		p.LLMOperationGroup = &ng
	}
	return p
}

func cloneToken(t Token) Token {
	t.Scopes = cloneSlice(t.Scopes)
	return t
}
