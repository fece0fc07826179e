package mgmt

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// productName is what Apigee allows in a product's name: "A-Z0-9._\-$ %"
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.apiproducts#ApiProduct).
var productName = regexp.MustCompile(`^[A-Za-z0-9._\-$ %]+$`)

var (
	timeUnits   = []string{"minute", "hour", "day", "month"}
	httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
)

// validateProduct checks a product as Apigee would and names the field path
// of the first problem.
func validateProduct(p apigeeapi.APIProduct) error {
	if p.Name == "" {
		return invalid("name: required")
	}
	if !productName.MatchString(p.Name) {
		return invalid("name: %q may only use letters, digits and . _ - $ space %%", p.Name)
	}
	switch p.ApprovalType {
	case "", "auto", "manual":
	default:
		return invalid("approvalType: %q, want auto or manual", p.ApprovalType)
	}
	if err := validateAttributes("attributes", p.Attributes); err != nil {
		return err
	}
	for i, s := range p.Scopes {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t") {
			return invalid("scopes[%d]: %q is not a scope (no blanks or spaces)", i, s)
		}
	}
	if p.Quota != "" || p.QuotaInterval != "" || p.QuotaTimeUnit != "" {
		q := apigeeapi.Quota{Limit: p.Quota, Interval: p.QuotaInterval, TimeUnit: p.QuotaTimeUnit}
		if err := validateQuota("", q, map[string]string{"limit": "quota", "interval": "quotaInterval", "timeUnit": "quotaTimeUnit"}); err != nil {
			return err
		}
	}
	if g := p.OperationGroup; g != nil {
		switch g.OperationConfigType {
		case "", "proxy", "remoteservice":
		default:
			return invalid("operationGroup.operationConfigType: %q, want proxy or remoteservice", g.OperationConfigType)
		}
		for i, oc := range g.OperationConfigs {
			path := fmt.Sprintf("operationGroup.operationConfigs[%d]", i)
			if oc.APISource == "" {
				return invalid("%s.apiSource: required", path)
			}
			for j, op := range oc.Operations {
				if err := validateOperation(fmt.Sprintf("%s.operations[%d]", path, j), op.Resource, op.Methods); err != nil {
					return err
				}
			}
			if oc.Quota != nil {
				if err := validateQuota(path+".quota.", *oc.Quota, nil); err != nil {
					return err
				}
			}
			if err := validateAttributes(path+".attributes", oc.Attributes); err != nil {
				return err
			}
		}
	}
	if g := p.LLMOperationGroup; g != nil {
		for i, oc := range g.OperationConfigs {
			path := fmt.Sprintf("llmOperationGroup.operationConfigs[%d]", i)
			if oc.APISource == "" {
				return invalid("%s.apiSource: required", path)
			}
			for j, op := range oc.LLMOperations {
				opPath := fmt.Sprintf("%s.llmOperations[%d]", path, j)
				if op.Model == "" {
					return invalid("%s.model: required", opPath)
				}
				if err := validateOperation(opPath, op.Resource, op.Methods); err != nil {
					return err
				}
			}
			if oc.LLMTokenQuota != nil {
				if err := validateQuota(path+".llmTokenQuota.", *oc.LLMTokenQuota, nil); err != nil {
					return err
				}
			}
			if err := validateAttributes(path+".attributes", oc.Attributes); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateOperation(path, resource string, methods []string) error {
	if !strings.HasPrefix(resource, "/") {
		return invalid("%s.resource: %q must start with \"/\"", path, resource)
	}
	for k, m := range methods {
		if !slices.Contains(httpMethods, m) {
			return invalid("%s.methods[%d]: %q, want one of %s", path, k, m, strings.Join(httpMethods, ", "))
		}
	}
	return nil
}

// validateQuota checks limit and interval are positive whole numbers and the
// time unit is known. Field names are prefix+name, or names[name] if given.
func validateQuota(prefix string, q apigeeapi.Quota, names map[string]string) error {
	field := func(n string) string {
		if names != nil {
			return names[n]
		}
		return prefix + n
	}
	for _, f := range []struct{ name, value string }{{"limit", q.Limit}, {"interval", q.Interval}} {
		if n, err := strconv.ParseInt(f.value, 10, 64); err != nil || n <= 0 {
			return invalid("%s: %q is not a positive whole number", field(f.name), f.value)
		}
	}
	if !slices.Contains(timeUnits, q.TimeUnit) {
		return invalid("%s: %q, want one of %s", field("timeUnit"), q.TimeUnit, strings.Join(timeUnits, ", "))
	}
	return nil
}

// normalizeProduct fills what Apigee fills: the approval type (auto) and the
// display name (the name).
func normalizeProduct(p *apigeeapi.APIProduct) {
	if p.ApprovalType == "" {
		p.ApprovalType = "auto"
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
}

func (a *API) createProduct(r *http.Request) (int, any, error) {
	var p apigeeapi.APIProduct
	if err := decode(r, &p); err != nil {
		return 0, nil, err
	}
	if err := validateProduct(p); err != nil {
		return 0, nil, err
	}
	normalizeProduct(&p)
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	if _, err := a.store.GetProduct(ctx, p.Name); err == nil {
		return 0, nil, conflict("API product %q already exists", p.Name)
	} else if !errors.Is(err, state.ErrNotFound) {
		return 0, nil, err
	}
	now := a.now()
	p.CreatedAt, p.LastModifiedAt = now, now
	if err := a.store.PutProduct(ctx, p); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, p, nil
}

func (a *API) listProducts(r *http.Request) (int, any, error) {
	full, err := expand(r)
	if err != nil {
		return 0, nil, err
	}
	ps, err := a.store.ListProducts(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := apigeeapi.APIProducts{APIProduct: []apigeeapi.APIProduct{}}
	for _, p := range ps {
		if !full {
			p = apigeeapi.APIProduct{Name: p.Name}
		}
		out.APIProduct = append(out.APIProduct, p)
	}
	return http.StatusOK, out, nil
}

func (a *API) getProduct(r *http.Request) (int, any, error) {
	p, err := a.store.GetProduct(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

// updateProduct replaces the product, keeping its creation time.
func (a *API) updateProduct(r *http.Request) (int, any, error) {
	var p apigeeapi.APIProduct
	if err := decode(r, &p); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return 0, nil, invalid("name: %q differs from the product in the path, %q; a product's name cannot change", p.Name, name)
	}
	if err := validateProduct(p); err != nil {
		return 0, nil, err
	}
	normalizeProduct(&p)
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	old, err := a.store.GetProduct(ctx, name)
	if err != nil {
		return 0, nil, err
	}
	p.CreatedAt, p.LastModifiedAt = old.CreatedAt, a.now()
	if err := a.store.PutProduct(ctx, p); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

// deleteProduct deletes the product and answers with it. Keys that list it
// keep the reference; it grants nothing any more.
func (a *API) deleteProduct(r *http.Request) (int, any, error) {
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	p, err := a.store.GetProduct(ctx, r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteProduct(ctx, p.Name); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}
