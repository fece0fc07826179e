package apigee

import (
	"context"
	"fmt"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// BuildFlow compiles an APIMExtensionPolicy's flow: the operator's default
// security when it is enabled (VerifyAPIKey on x-api-key, the product's
// quota, the LLM token quota), then the policy XML files attached to the
// request and response flows, in order. A policy file that does not parse is
// an error naming the file. env.APISource is set to the policy's name, so
// products' operation configs for other policies do not apply.
func BuildFlow(ext *manifests.Extension, env policy.Env) (*Flow, error) {
	env.APISource = ext.Name
	f := &Flow{Name: ext.Name}
	var defResp []policy.Policy
	if ext.DefaultSecurity {
		f.Request, defResp = policy.DefaultSecurity(env)
	}
	for _, file := range ext.RequestPolicies {
		p, err := policy.Parse(file.XML, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file.Path, err)
		}
		f.Request = append(f.Request, p)
	}
	for _, file := range ext.ResponsePolicies {
		p, err := policy.Parse(file.XML, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file.Path, err)
		}
		f.Response = append(f.Response, p)
	}
	// The default token count runs last, once attached response policies
	// (sanitisers) have seen the answer.
	f.Response = append(f.Response, defResp...)
	return f, nil
}

// SyncProducts writes the topology's products into the store, as the Apigee
// Operator syncs APIProduct and APIOperationSet objects into Apigee. Products
// already in the store under the same name are replaced; others are left.
func SyncProducts(ctx context.Context, dir state.Directory, products []apigeeapi.APIProduct) error {
	for _, p := range products {
		if err := dir.PutProduct(ctx, p); err != nil {
			return fmt.Errorf("sync product %s: %w", p.Name, err)
		}
	}
	return nil
}
