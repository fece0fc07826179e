package manifests

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// The Apigee runtime an APIMExtensionPolicy sends traffic to. On GKE the
// operator points the Gateway's traffic extension at Google's managed
// runtime; here it is gatecheck's fake runtime, reached as the Service
// RuntimeServiceName(policy) on RuntimePort in the policy's namespace (the
// simulation maps it to its in-process runtime; kind deploys
// `gatecheck serve apigee` behind it).
const (
	RuntimeServicePrefix = "apigee-runtime-"
	RuntimePort          = 9010
)

// RuntimeServiceName is the Service of the runtime serving an
// APIMExtensionPolicy's flow: one per policy, so each flow has its own
// ext_proc address.
func RuntimeServiceName(policy string) string { return RuntimeServicePrefix + policy }

const (
	apimGroup          = "apim.googleapis.com"
	defaultAPIMTimeout = time.Second
	// PoliciesDir is where policy XML attached to an APIMExtensionPolicy
	// lives, relative to the manifests root:
	// policies/<APIMExtensionPolicy name>/request/*.xml and .../response/*.xml.
	PoliciesDir = "policies"
	// maxProductAttributes is Apigee's limit on a product's attributes.
	maxProductAttributes = 18
)

// compileAPIM compiles the Apigee Operator kinds: each APIMExtensionPolicy
// becomes an Extension of the Gateway it targets, and products with their
// operation sets become Snapshot.Products.
func (c *compiler) compileAPIM() {
	byName := map[string]*Extension{}
	for _, o := range c.apimPolicies {
		p := o.Value.(*APIMExtensionPolicy)
		ext := &Extension{
			Name:            o.Name,
			Namespace:       o.Namespace,
			Service:         Ref{Namespace: o.Namespace, Name: RuntimeServiceName(o.Name)},
			Port:            RuntimePort,
			FailOpen:        p.Spec.FailOpen,
			Timeout:         defaultAPIMTimeout,
			DefaultSecurity: p.Spec.DefaultSecurityEnabled,
		}
		if t := p.Spec.Timeout; t != "" {
			d, err := time.ParseDuration(t)
			switch {
			case err != nil:
				c.errorf(o, "spec.timeout", "invalid duration %q (want for example 1000ms or 2s)", t)
			case d <= 0:
				c.errorf(o, "spec.timeout", "must be positive, got %s", t)
			default:
				ext.Timeout = d
			}
		}
		if other, dup := byName[o.Name]; dup {
			c.errorf(o, "metadata.name", "APIMExtensionPolicy %s/%s has the same name; products name policies by name alone", other.Namespace, other.Name)
			continue
		}
		byName[o.Name] = ext
		tr := p.Spec.TargetRef
		if tr.Kind != "" && tr.Kind != "Gateway" {
			c.errorf(o, "spec.targetRef.kind", "must be Gateway, got %q (the operator attaches policies to Gateways only)", tr.Kind)
			continue
		}
		if tr.Group != "" && tr.Group != gatewayGroup {
			c.errorf(o, "spec.targetRef.group", "must be %s, got %q", gatewayGroup, tr.Group)
			continue
		}
		if tr.Name == "" {
			c.errorf(o, "spec.targetRef.name", "must name a Gateway")
			continue
		}
		ref := Ref{Namespace: cmpOr(tr.Namespace, o.Namespace), Name: tr.Name}
		gw, ok := c.gatewayByRef[ref]
		if !ok {
			if !c.declared("Gateway", ref) {
				c.errorf(o, "spec.targetRef.name", "Gateway %s not found", ref)
			}
			continue
		}
		gw.Extensions = append(gw.Extensions, ext)
	}
	c.attachPolicyFiles(byName)

	products := map[Ref]int{} // index into Snapshot.Products
	for _, o := range c.apimProducts {
		p := o.Value.(*APIProduct)
		prod := apigeeapi.APIProduct{
			Name:         cmpOr(p.Spec.Name, o.Name),
			DisplayName:  cmpOr(p.Spec.DisplayName, cmpOr(p.Spec.Name, o.Name)),
			Description:  p.Spec.Description,
			ApprovalType: cmpOr(p.Spec.ApprovalType, "auto"),
		}
		if prod.ApprovalType != "auto" && prod.ApprovalType != "manual" {
			c.errorf(o, "spec.approvalType", "must be auto or manual, got %q", prod.ApprovalType)
		}
		if len(p.Spec.Attributes) > maxProductAttributes {
			c.errorf(o, "spec.attributes", "at most %d attributes, got %d", maxProductAttributes, len(p.Spec.Attributes))
		}
		for i, a := range p.Spec.Attributes {
			if a.Name == "" {
				c.errorf(o, fmt.Sprintf("spec.attributes[%d].name", i), "must be set")
			}
			prod.Attributes = append(prod.Attributes, apigeeapi.Attribute{Name: a.Name, Value: a.Value})
		}
		var sources []string
		for i, r := range p.Spec.EnforcementRefs {
			field := fmt.Sprintf("spec.enforcementRefs[%d]", i)
			if r.Kind != "" && r.Kind != "APIMExtensionPolicy" {
				c.errorf(o, field+".kind", "must be APIMExtensionPolicy, got %q", r.Kind)
				continue
			}
			if r.Group != "" && r.Group != apimGroup {
				c.errorf(o, field+".group", "must be %s, got %q", apimGroup, r.Group)
				continue
			}
			if _, ok := byName[r.Name]; !ok {
				c.errorf(o, field+".name", "APIMExtensionPolicy %s not found", r.Name)
				continue
			}
			sources = append(sources, r.Name)
		}
		if len(p.Spec.EnforcementRefs) == 0 {
			// No enforcement named: every policy of the topology enforces it.
			for name := range byName {
				sources = append(sources, name)
			}
			slices.Sort(sources)
		}
		c.productSources[refOf(o)] = sources
		products[refOf(o)] = len(c.snap.Products)
		c.snap.Products = append(c.snap.Products, prod)
	}
	for _, o := range c.apimOpSets {
		s := o.Value.(*APIOperationSet)
		var ops []apigeeapi.Operation
		for i, op := range s.Spec.RESTOperations {
			field := fmt.Sprintf("spec.restOperations[%d]", i)
			if !strings.HasPrefix(op.Path, "/") {
				c.errorf(o, field+".path", "must start with \"/\", got %q", op.Path)
				continue
			}
			var methods []string
			for j, m := range op.Methods {
				if !slices.Contains(httpMethods, m) {
					c.errorf(o, fmt.Sprintf("%s.methods[%d]", field, j), "invalid HTTP method %q", m)
					continue
				}
				methods = append(methods, m)
			}
			ops = append(ops, apigeeapi.Operation{Resource: op.Path, Methods: methods})
		}
		if len(s.Spec.RESTOperations) == 0 {
			c.errorf(o, "spec.restOperations", "must list at least one operation")
		}
		var quota *apigeeapi.Quota
		if q := s.Spec.Quota; q != nil {
			quota = c.quota(o, "spec.quota", q)
		}
		if len(s.Spec.APIProductRefs) == 0 {
			c.errorf(o, "spec.apiProductRefs", "must name at least one APIProduct")
		}
		for i, r := range s.Spec.APIProductRefs {
			field := fmt.Sprintf("spec.apiProductRefs[%d]", i)
			if r.Kind != "" && r.Kind != "APIProduct" {
				c.errorf(o, field+".kind", "must be APIProduct, got %q", r.Kind)
				continue
			}
			ref := Ref{Namespace: cmpOr(r.Namespace, o.Namespace), Name: r.Name}
			idx, ok := products[ref]
			if !ok {
				if !c.declared("APIProduct", ref) {
					c.errorf(o, field+".name", "APIProduct %s not found", ref)
				}
				continue
			}
			prod := &c.snap.Products[idx]
			if prod.OperationGroup == nil {
				prod.OperationGroup = &apigeeapi.OperationGroup{OperationConfigType: "proxy"}
			}
			for _, src := range c.productSources[ref] {
				prod.OperationGroup.OperationConfigs = append(prod.OperationGroup.OperationConfigs, apigeeapi.OperationConfig{
					APISource:  src,
					Operations: slices.Clone(ops),
					Quota:      quota,
				})
			}
		}
	}
}

// quota validates an operation set's quota.
func (c *compiler) quota(o Object, field string, q *APIMQuota) *apigeeapi.Quota {
	ok := true
	if q.Limit <= 0 {
		c.errorf(o, field+".limit", "must be a positive integer, got %d", q.Limit)
		ok = false
	}
	interval := q.Interval
	if interval == 0 {
		interval = 1
	}
	if interval < 0 {
		c.errorf(o, field+".interval", "must be a positive integer, got %d", q.Interval)
		ok = false
	}
	unit := cmpOr(q.TimeUnit, "minute")
	switch unit {
	case "minute", "hour", "day", "month":
	default:
		c.errorf(o, field+".timeUnit", "must be minute, hour, day or month, got %q", q.TimeUnit)
		ok = false
	}
	if !ok {
		return nil
	}
	return &apigeeapi.Quota{Limit: strconv.FormatInt(q.Limit, 10), Interval: strconv.FormatInt(interval, 10), TimeUnit: unit}
}

// attachPolicyFiles puts policy XML files in the flows of the policies they
// are filed under: policies/<name>/request/*.xml and policies/<name>/response/*.xml.
func (c *compiler) attachPolicyFiles(byName map[string]*Extension) {
	names := make([]string, 0, len(c.snap.Policies))
	for p := range c.snap.Policies {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		parts := strings.Split(path.Clean(p), "/")
		if len(parts) != 4 || parts[0] != PoliciesDir || (parts[2] != "request" && parts[2] != "response") {
			c.errs = append(c.errs, positionedError{file: p, err: &FieldError{File: p, Msg: "policy XML must be filed as policies/<APIMExtensionPolicy>/request/<name>.xml or .../response/<name>.xml"}})
			continue
		}
		ext, ok := byName[parts[1]]
		if !ok {
			c.errs = append(c.errs, positionedError{file: p, err: &FieldError{File: p, Msg: fmt.Sprintf("no APIMExtensionPolicy named %q to attach it to", parts[1])}})
			continue
		}
		f := PolicyFile{Path: p, XML: c.snap.Policies[p]}
		if parts[2] == "request" {
			ext.RequestPolicies = append(ext.RequestPolicies, f)
		} else {
			ext.ResponsePolicies = append(ext.ResponsePolicies, f)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
