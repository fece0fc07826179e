package policy

import (
	"slices"
	"sync"
)

// Flow variables the runtime reads after the request flow.
const (
	// VarIdentityApp, VarIdentityDeveloper and VarIdentityProduct are the
	// verified app name, developer email and matched product, which the
	// runtime forwards as x-apigee-app, x-apigee-developer and
	// x-apigee-product.
	VarIdentityApp       = "gatecheck.identity.app"
	VarIdentityDeveloper = "gatecheck.identity.developer"
	VarIdentityProduct   = "gatecheck.identity.product"
	// VarCredentialHeader names the request header (lower case) that held
	// the verified credential (x-api-key, authorization), so the runtime can
	// drop it before the backend; VarCredentialQueryParam names a query
	// parameter that did.
	VarCredentialHeader     = "gatecheck.credential.header"
	VarCredentialQueryParam = "gatecheck.credential.queryparam"
	// VarFaultPrefix + policy name holds the error code of a fault a
	// continueOnError policy swallowed.
	VarFaultPrefix = "gatecheck.fault."
)

// Vars are a request's flow variables. Names are case-sensitive, as in
// Apigee. A flow runs one policy at a time, but the runtime may read the
// variables from another goroutine (for the identity headers, for traces), so
// access is guarded by a lock. The zero value is ready to use.
type Vars struct {
	mu sync.RWMutex
	m  map[string]string
}

// NewVars returns an empty set of flow variables.
func NewVars() *Vars { return &Vars{} }

// Get returns the variable's value and whether it is set.
func (v *Vars) Get(name string) (string, bool) {
	if v == nil {
		return "", false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.m[name]
	return s, ok
}

// Set sets the variable.
func (v *Vars) Set(name, value string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[string]string)
	}
	v.m[name] = value
}

// Names returns the names of the variables set, sorted.
func (v *Vars) Names() []string {
	if v == nil {
		return nil
	}
	v.mu.RLock()
	names := make([]string, 0, len(v.m))
	for k := range v.m {
		names = append(names, k)
	}
	v.mu.RUnlock()
	slices.Sort(names)
	return names
}

// vars returns m.Vars, creating it on first use.
func (m *Message) vars() *Vars {
	if m.Vars == nil {
		m.Vars = NewVars()
	}
	return m.Vars
}
