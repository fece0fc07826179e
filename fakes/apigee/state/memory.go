package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// sweepEvery is how often, in store-clock time, a store scans all counters
// for expired ones. Expired counters met by Take are reset at once anyway;
// the sweep only bounds memory.
const sweepEvery = time.Minute

// appRef locates an app: the developer's key (lower-cased email) and the
// app's name.
type appRef struct {
	Developer string `json:"developer"`
	App       string `json:"app"`
}

// devKey is the key a developer is stored under: Apigee treats emails
// without case.
func devKey(email string) string { return strings.ToLower(email) }

// Memory is the in-memory Store, the default. Its zero value is not usable;
// call NewMemory.
type Memory struct {
	clock clock.Clock

	mu         sync.RWMutex
	developers map[string]apigeeapi.Developer               // devKey → developer
	apps       map[string]map[string]apigeeapi.DeveloperApp // devKey → name → app
	keys       map[string]appRef                            // consumer key → app
	products   map[string]apigeeapi.APIProduct
	tokens     map[string]Token

	cmu       sync.Mutex
	counters  map[string]*counter
	nextSweep time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store. Of the options only WithClock
// matters (it decides when counters expire).
func NewMemory(opts ...Option) *Memory {
	o, _ := buildOptions(opts) // the options NewMemory reads cannot fail
	return &Memory{
		clock:      o.clock,
		developers: make(map[string]apigeeapi.Developer),
		apps:       make(map[string]map[string]apigeeapi.DeveloperApp),
		keys:       make(map[string]appRef),
		products:   make(map[string]apigeeapi.APIProduct),
		tokens:     make(map[string]Token),
		counters:   make(map[string]*counter),
	}
}

// Close does nothing; the memory store stays usable.
func (m *Memory) Close() error { return nil }

// PutDeveloper creates or replaces the developer with d's email.
func (m *Memory) PutDeveloper(ctx context.Context, d apigeeapi.Developer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEmail("put developer", d.Email); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.developers[devKey(d.Email)] = cloneDeveloper(d)
	return nil
}

// GetDeveloper returns the developer with this email.
func (m *Memory) GetDeveloper(ctx context.Context, email string) (apigeeapi.Developer, error) {
	if err := ctx.Err(); err != nil {
		return apigeeapi.Developer{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.developers[devKey(email)]
	if !ok {
		return apigeeapi.Developer{}, fmt.Errorf("developer %q: %w", email, ErrNotFound)
	}
	return cloneDeveloper(d), nil
}

// ListDevelopers returns every developer, ordered by email.
func (m *Memory) ListDevelopers(ctx context.Context) ([]apigeeapi.Developer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]apigeeapi.Developer, 0, len(m.developers))
	for _, k := range sortedKeys(m.developers) {
		out = append(out, cloneDeveloper(m.developers[k]))
	}
	return out, nil
}

// DeleteDeveloper deletes the developer, their apps, the apps' keys and the
// tokens issued to those keys.
func (m *Memory) DeleteDeveloper(ctx context.Context, email string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dk := devKey(email)
	if _, ok := m.developers[dk]; !ok {
		return fmt.Errorf("developer %q: %w", email, ErrNotFound)
	}
	for _, app := range m.apps[dk] {
		m.dropKeysLocked(app, nil)
	}
	delete(m.apps, dk)
	delete(m.developers, dk)
	return nil
}

// PutApp creates or replaces the developer's app of the same name and
// re-indexes its consumer keys. Keys the old app had and the new one lacks
// are forgotten, with their tokens.
func (m *Memory) PutApp(ctx context.Context, email string, app apigeeapi.DeveloperApp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateApp(email, app); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dk := devKey(email)
	if _, ok := m.developers[dk]; !ok {
		return fmt.Errorf("put app %q: developer %q: %w", app.Name, email, ErrNotFound)
	}
	ref := appRef{Developer: dk, App: app.Name}
	for _, c := range app.Credentials {
		if owner, ok := m.keys[c.ConsumerKey]; ok && owner != ref {
			return fmt.Errorf("put app %q: consumer key %s belongs to app %q of %q: %w",
				app.Name, redactKey(c.ConsumerKey), owner.App, owner.Developer, ErrExists)
		}
	}
	if m.apps[dk] == nil {
		m.apps[dk] = make(map[string]apigeeapi.DeveloperApp)
	}
	if old, ok := m.apps[dk][app.Name]; ok {
		m.dropKeysLocked(old, &app)
	}
	for _, c := range app.Credentials {
		m.keys[c.ConsumerKey] = ref
	}
	m.apps[dk][app.Name] = cloneApp(app)
	return nil
}

// dropKeysLocked forgets the keys of old that keep (nil: none) does not
// have, and the tokens issued to them.
func (m *Memory) dropKeysLocked(old apigeeapi.DeveloperApp, keep *apigeeapi.DeveloperApp) {
	gone := droppedKeys(old, keep)
	if len(gone) == 0 {
		return
	}
	for k := range gone {
		delete(m.keys, k)
	}
	for at, t := range m.tokens {
		if _, ok := gone[t.ConsumerKey]; ok {
			delete(m.tokens, at)
		}
	}
}

// GetApp returns the developer's app with this name.
func (m *Memory) GetApp(ctx context.Context, email, name string) (apigeeapi.DeveloperApp, error) {
	if err := ctx.Err(); err != nil {
		return apigeeapi.DeveloperApp{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	dk := devKey(email)
	if _, ok := m.developers[dk]; !ok {
		return apigeeapi.DeveloperApp{}, fmt.Errorf("developer %q: %w", email, ErrNotFound)
	}
	app, ok := m.apps[dk][name]
	if !ok {
		return apigeeapi.DeveloperApp{}, fmt.Errorf("app %q of developer %q: %w", name, email, ErrNotFound)
	}
	return cloneApp(app), nil
}

// ListApps returns the developer's apps, ordered by name.
func (m *Memory) ListApps(ctx context.Context, email string) ([]apigeeapi.DeveloperApp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	dk := devKey(email)
	if _, ok := m.developers[dk]; !ok {
		return nil, fmt.Errorf("developer %q: %w", email, ErrNotFound)
	}
	apps := m.apps[dk]
	out := make([]apigeeapi.DeveloperApp, 0, len(apps))
	for _, k := range sortedKeys(apps) {
		out = append(out, cloneApp(apps[k]))
	}
	return out, nil
}

// DeleteApp deletes the developer's app, its keys and their tokens.
func (m *Memory) DeleteApp(ctx context.Context, email, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dk := devKey(email)
	app, ok := m.apps[dk][name]
	if !ok {
		return fmt.Errorf("app %q of developer %q: %w", name, email, ErrNotFound)
	}
	m.dropKeysLocked(app, nil)
	delete(m.apps[dk], name)
	return nil
}

// PutProduct creates or replaces the product with p's name.
func (m *Memory) PutProduct(ctx context.Context, p apigeeapi.APIProduct) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Name == "" {
		return fmt.Errorf("put product: empty name: %w", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.products[p.Name] = cloneProduct(p)
	return nil
}

// GetProduct returns the product with this name.
func (m *Memory) GetProduct(ctx context.Context, name string) (apigeeapi.APIProduct, error) {
	if err := ctx.Err(); err != nil {
		return apigeeapi.APIProduct{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.products[name]
	if !ok {
		return apigeeapi.APIProduct{}, fmt.Errorf("api product %q: %w", name, ErrNotFound)
	}
	return cloneProduct(p), nil
}

// ListProducts returns every product, ordered by name.
func (m *Memory) ListProducts(ctx context.Context) ([]apigeeapi.APIProduct, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]apigeeapi.APIProduct, 0, len(m.products))
	for _, k := range sortedKeys(m.products) {
		out = append(out, cloneProduct(m.products[k]))
	}
	return out, nil
}

// DeleteProduct deletes the product. Credentials that list it keep the
// reference; Consumer leaves the missing product out.
func (m *Memory) DeleteProduct(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.products[name]; !ok {
		return fmt.Errorf("api product %q: %w", name, ErrNotFound)
	}
	delete(m.products, name)
	return nil
}

// Consumer finds the credential with this consumer key and everything around
// it.
func (m *Memory) Consumer(ctx context.Context, consumerKey string) (Consumer, error) {
	if err := ctx.Err(); err != nil {
		return Consumer{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ref, ok := m.keys[consumerKey]
	if !ok {
		return Consumer{}, fmt.Errorf("consumer key %s: %w", redactKey(consumerKey), ErrNotFound)
	}
	app := m.apps[ref.Developer][ref.App]
	cred, ok := findCredential(app, consumerKey)
	if !ok {
		// The index and the apps are updated under one lock; this is a bug.
		return Consumer{}, fmt.Errorf("consumer key %s: index names app %q without the key: %w",
			redactKey(consumerKey), ref.App, ErrNotFound)
	}
	c := Consumer{
		Developer:  cloneDeveloper(m.developers[ref.Developer]),
		App:        cloneApp(app),
		Credential: cloneCredential(cred),
		Products:   []apigeeapi.APIProduct{},
	}
	for _, pr := range cred.APIProducts {
		if p, ok := m.products[pr.APIProduct]; ok {
			c.Products = append(c.Products, cloneProduct(p))
		}
	}
	return c, nil
}

// PutToken stores an issued access token, replacing one with the same value.
func (m *Memory) PutToken(ctx context.Context, t Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.AccessToken == "" {
		return fmt.Errorf("put token: empty access token: %w", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[t.AccessToken] = cloneToken(t)
	return nil
}

// GetToken returns the token, expired or not.
func (m *Memory) GetToken(ctx context.Context, accessToken string) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tokens[accessToken]
	if !ok {
		return Token{}, fmt.Errorf("access token %s: %w", redactKey(accessToken), ErrNotFound)
	}
	return cloneToken(t), nil
}

// Take checks and updates one counter atomically.
func (m *Memory) Take(ctx context.Context, req TakeRequest) (TakeResult, error) {
	if err := ctx.Err(); err != nil {
		return TakeResult{}, err
	}
	if err := validateTake(req); err != nil {
		return TakeResult{}, err
	}
	now := m.clock.Now()
	m.cmu.Lock()
	defer m.cmu.Unlock()
	if !now.Before(m.nextSweep) {
		for k, c := range m.counters {
			if c.expired(now) {
				delete(m.counters, k)
			}
		}
		m.nextSweep = now.Add(sweepEvery)
	}
	c, ok := m.counters[req.Key]
	if !ok || c.expired(now) {
		c = newCounter(req)
		m.counters[req.Key] = c
	}
	return c.take(req), nil
}

// ResetCounters forgets every counter whose key starts with prefix ("" is
// all of them).
func (m *Memory) ResetCounters(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.cmu.Lock()
	defer m.cmu.Unlock()
	for k := range m.counters {
		if strings.HasPrefix(k, prefix) {
			delete(m.counters, k)
		}
	}
	return nil
}

// counterCount is how many counters the store holds; for tests of expiry.
func (m *Memory) counterCount() int {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	return len(m.counters)
}

// validateApp checks what the store needs of an app: a developer, a name, and
// distinct non-empty consumer keys.
func validateApp(email string, app apigeeapi.DeveloperApp) error {
	if err := checkEmail(fmt.Sprintf("put app %q", app.Name), email); err != nil {
		return err
	}
	if app.Name == "" {
		return fmt.Errorf("put app: empty app name: %w", ErrInvalid)
	}
	seen := make(map[string]bool, len(app.Credentials))
	for i, c := range app.Credentials {
		if c.ConsumerKey == "" {
			return fmt.Errorf("put app %q: credentials[%d]: empty consumer key: %w", app.Name, i, ErrInvalid)
		}
		if seen[c.ConsumerKey] {
			return fmt.Errorf("put app %q: credentials[%d]: consumer key %s used twice: %w",
				app.Name, i, redactKey(c.ConsumerKey), ErrExists)
		}
		seen[c.ConsumerKey] = true
	}
	return nil
}

// checkEmail rejects emails no store can key a developer by. NUL separates
// the email from the app name in the file store's app keys.
func checkEmail(op, email string) error {
	switch {
	case email == "":
		return fmt.Errorf("%s: empty developer email: %w", op, ErrInvalid)
	case strings.ContainsRune(email, 0):
		return fmt.Errorf("%s: developer email %q contains NUL: %w", op, email, ErrInvalid)
	}
	return nil
}

// droppedKeys returns the consumer keys old has and keep (nil: nothing) has
// not.
func droppedKeys(old apigeeapi.DeveloperApp, keep *apigeeapi.DeveloperApp) map[string]struct{} {
	gone := make(map[string]struct{})
	for _, c := range old.Credentials {
		gone[c.ConsumerKey] = struct{}{}
	}
	if keep != nil {
		for _, c := range keep.Credentials {
			delete(gone, c.ConsumerKey)
		}
	}
	return gone
}

func findCredential(app apigeeapi.DeveloperApp, consumerKey string) (apigeeapi.Credential, bool) {
	for _, c := range app.Credentials {
		if c.ConsumerKey == consumerKey {
			return c, true
		}
	}
	return apigeeapi.Credential{}, false
}

// redactKey shows enough of a secret (consumer key, access token) to tell
// two apart in an error message, never the whole of it.
func redactKey(k string) string {
	if len(k) <= 8 {
		return `"…"`
	}
	return fmt.Sprintf("%q", k[:4]+"…")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
