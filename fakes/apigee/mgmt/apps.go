package mgmt

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// importedKey is what Apigee accepts for an imported consumer key or secret:
// "letters, numbers, underscores, and hyphens", at most 2 KB
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.developers.apps.keys/create).
var importedKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

const maxImportedKey = 2048

func validateAppName(name string) error {
	switch {
	case name == "":
		return invalid("name: required")
	case strings.ContainsAny(name, "/?#%\x00"):
		return invalid("name: %q may not contain / ? # %% or NUL", name)
	}
	return nil
}

// products looks up named products for field; an unknown one is 400.
func (a *API) products(ctx context.Context, field string, names []string) ([]apigeeapi.APIProduct, error) {
	var out []apigeeapi.APIProduct
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, err := a.store.GetProduct(ctx, n)
		if errors.Is(err, state.ErrNotFound) {
			return nil, invalid("%s[%d]: API product %q does not exist", field, i, n)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// productRef is a product on a new credential: approved when the product
// approves keys automatically, pending when manually.
func productRef(p apigeeapi.APIProduct) apigeeapi.APIProductRef {
	status := statusApproved
	if p.ApprovalType == "manual" {
		status = statusPending
	}
	return apigeeapi.APIProductRef{APIProduct: p.Name, Status: status}
}

// checkScopes requires every scope to be a scope of one of the products
// (Apigee: "The specified scopes must already exist for the API product").
func checkScopes(field string, scopes []string, products []apigeeapi.APIProduct) error {
	for i, s := range scopes {
		found := false
		for _, p := range products {
			found = found || slices.Contains(p.Scopes, s)
		}
		if !found {
			return invalid("%s[%d]: scope %q is not a scope of any of the API products", field, i, s)
		}
	}
	return nil
}

// expiresAt turns a lifetime (milliseconds or seconds per unit, "-1" or
// empty for never) into Apigee's expiresAt.
func (a *API) expiresAt(field, lifetime string, unit time.Duration) (string, error) {
	if lifetime == "" || lifetime == neverExpires {
		return neverExpires, nil
	}
	n, err := strconv.ParseInt(lifetime, 10, 64)
	if err != nil || n <= 0 || n > int64(100*365*24*time.Hour/unit) {
		return "", invalid("%s: %q is not a positive whole number (or -1 for never)", field, lifetime)
	}
	return millis(a.clock.Now().Add(time.Duration(n) * unit)), nil
}

// newCredential makes a generated key and secret for products.
func (a *API) newCredential(products []apigeeapi.APIProduct, scopes []string, expires string) (apigeeapi.Credential, error) {
	key, err := a.random(consumerKeyLength)
	if err != nil {
		return apigeeapi.Credential{}, err
	}
	secret, err := a.random(consumerSecretLength)
	if err != nil {
		return apigeeapi.Credential{}, err
	}
	c := apigeeapi.Credential{
		ConsumerKey: key, ConsumerSecret: secret, Scopes: scopes,
		Status: statusApproved, IssuedAt: a.now(), ExpiresAt: expires,
	}
	for _, p := range products {
		c.APIProducts = append(c.APIProducts, productRef(p))
	}
	return c, nil
}

func productNames(ps []apigeeapi.APIProduct) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

// createApp creates an app with one generated credential for its products
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.developers.apps/create).
func (a *API) createApp(r *http.Request) (int, any, error) {
	var in apigeeapi.DeveloperApp
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := validateAppName(in.Name); err != nil {
		return 0, nil, err
	}
	if err := validateAttributes("attributes", in.Attributes); err != nil {
		return 0, nil, err
	}
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	email := r.PathValue("email")
	dev, err := a.store.GetDeveloper(ctx, email)
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.store.GetApp(ctx, email, in.Name); err == nil {
		return 0, nil, conflict("app %q of developer %q already exists", in.Name, email)
	} else if !errors.Is(err, state.ErrNotFound) {
		return 0, nil, err
	}
	products, err := a.products(ctx, "apiProducts", in.APIProducts)
	if err != nil {
		return 0, nil, err
	}
	if err := checkScopes("scopes", in.Scopes, products); err != nil {
		return 0, nil, err
	}
	expires, err := a.expiresAt("keyExpiresIn", in.KeyExpiresIn, time.Millisecond)
	if err != nil {
		return 0, nil, err
	}
	cred, err := a.newCredential(products, in.Scopes, expires)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.uuid()
	if err != nil {
		return 0, nil, err
	}
	now := a.now()
	app := apigeeapi.DeveloperApp{
		AppID: id, Name: in.Name, DeveloperID: dev.DeveloperID, AppFamily: in.AppFamily,
		APIProducts: productNames(products), Attributes: in.Attributes, CallbackURL: in.CallbackURL,
		Scopes: in.Scopes, Status: statusApproved, Credentials: []apigeeapi.Credential{cred},
		CreatedAt: now, LastModifiedAt: now,
	}
	if err := a.store.PutApp(ctx, dev.Email, app); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, app, nil
}

func (a *API) listApps(r *http.Request) (int, any, error) {
	full, err := expand(r)
	if err != nil {
		return 0, nil, err
	}
	apps, err := a.store.ListApps(r.Context(), r.PathValue("email"))
	if err != nil {
		return 0, nil, err
	}
	out := apigeeapi.DeveloperApps{App: []apigeeapi.DeveloperApp{}}
	for _, app := range apps {
		if !full {
			app = apigeeapi.DeveloperApp{AppID: app.AppID, Name: app.Name}
		}
		out.App = append(out.App, app)
	}
	return http.StatusOK, out, nil
}

func (a *API) getApp(r *http.Request) (int, any, error) {
	app, err := a.store.GetApp(r.Context(), r.PathValue("email"), r.PathValue("app"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, app, nil
}

// updateApp replaces the app's attributes and callback URL and, for products
// no credential has yet, generates a credential, as Apigee's apps.update
// does. The name and the scopes cannot change here.
func (a *API) updateApp(r *http.Request) (int, any, error) {
	var in apigeeapi.DeveloperApp
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("app")
	if in.Name != "" && in.Name != name {
		return 0, nil, invalid("name: %q differs from the app in the path, %q; an app's name cannot change", in.Name, name)
	}
	if err := validateAttributes("attributes", in.Attributes); err != nil {
		return 0, nil, err
	}
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	email := r.PathValue("email")
	app, err := a.store.GetApp(ctx, email, name)
	if err != nil {
		return 0, nil, err
	}
	if in.Scopes != nil && !slices.Equal(in.Scopes, app.Scopes) {
		return 0, nil, invalid("scopes: an app's scopes cannot change here; set a key's scopes with POST .../keys/{key}")
	}
	if in.APIProducts != nil {
		products, err := a.products(ctx, "apiProducts", in.APIProducts)
		if err != nil {
			return 0, nil, err
		}
		var added []apigeeapi.APIProduct
		for _, p := range products {
			if !appHasProduct(app, p.Name) {
				added = append(added, p)
			}
		}
		if len(added) > 0 {
			expires, err := a.expiresAt("keyExpiresIn", in.KeyExpiresIn, time.Millisecond)
			if err != nil {
				return 0, nil, err
			}
			cred, err := a.newCredential(added, nil, expires)
			if err != nil {
				return 0, nil, err
			}
			app.Credentials = append(app.Credentials, cred)
		}
		app.APIProducts = productNames(products)
	}
	app.Attributes, app.CallbackURL, app.AppFamily = in.Attributes, in.CallbackURL, in.AppFamily
	app.LastModifiedAt = a.now()
	if err := a.store.PutApp(ctx, email, app); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, app, nil
}

func appHasProduct(app apigeeapi.DeveloperApp, name string) bool {
	for _, c := range app.Credentials {
		for _, p := range c.APIProducts {
			if p.APIProduct == name {
				return true
			}
		}
	}
	return false
}

// setAppStatus is apps.generateKeyPairOrUpdateDeveloperAppStatus with
// ?action=approve|revoke: 204 No Content, as documented.
func (a *API) setAppStatus(r *http.Request) (int, any, error) {
	act, err := action(r, "approve", "revoke")
	if err != nil {
		return 0, nil, err
	}
	return a.editApp(r, func(app *apigeeapi.DeveloperApp) (int, any, error) {
		app.Status = statusFor(act)
		return http.StatusNoContent, nil, nil
	})
}

func statusFor(action string) string {
	if action == "approve" {
		return statusApproved
	}
	return statusRevoked
}

// deleteApp deletes the app and answers with it, as Apigee does.
func (a *API) deleteApp(r *http.Request) (int, any, error) {
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	email, name := r.PathValue("email"), r.PathValue("app")
	app, err := a.store.GetApp(ctx, email, name)
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteApp(ctx, email, name); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, app, nil
}

// editApp runs edit on the app of the request's path under the write lock
// and stores the result unless edit fails.
func (a *API) editApp(r *http.Request, edit func(app *apigeeapi.DeveloperApp) (int, any, error)) (int, any, error) {
	a.writes.Lock()
	defer a.writes.Unlock()
	ctx := r.Context()
	email := r.PathValue("email")
	app, err := a.store.GetApp(ctx, email, r.PathValue("app"))
	if err != nil {
		return 0, nil, err
	}
	code, body, err := edit(&app)
	if err != nil {
		return 0, nil, err
	}
	app.LastModifiedAt = a.now()
	if err := a.store.PutApp(ctx, email, app); err != nil {
		return 0, nil, err
	}
	return code, body, nil
}

// editKey is editApp for the credential of the request's path.
func (a *API) editKey(r *http.Request, edit func(app *apigeeapi.DeveloperApp, i int) (int, any, error)) (int, any, error) {
	return a.editApp(r, func(app *apigeeapi.DeveloperApp) (int, any, error) {
		i, err := keyIndex(*app, r.PathValue("key"))
		if err != nil {
			return 0, nil, err
		}
		return edit(app, i)
	})
}

func keyIndex(app apigeeapi.DeveloperApp, key string) (int, error) {
	for i, c := range app.Credentials {
		if c.ConsumerKey == key {
			return i, nil
		}
	}
	return 0, notFound("app %q has no such consumer key", app.Name)
}

func (a *API) getKey(r *http.Request) (int, any, error) {
	app, err := a.store.GetApp(r.Context(), r.PathValue("email"), r.PathValue("app"))
	if err != nil {
		return 0, nil, err
	}
	i, err := keyIndex(app, r.PathValue("key"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, app.Credentials[i], nil
}

// deleteKey removes the credential and answers with it.
func (a *API) deleteKey(r *http.Request) (int, any, error) {
	return a.editKey(r, func(app *apigeeapi.DeveloperApp, i int) (int, any, error) {
		c := app.Credentials[i]
		app.Credentials = slices.Delete(app.Credentials, i, i+1)
		return http.StatusOK, c, nil
	})
}

// keyUpdate is the body of keys.updateDeveloperAppKey: products to add, and
// attributes and scopes that replace the key's.
type keyUpdate struct {
	APIProducts []apigeeapi.APIProductRef `json:"apiProducts"`
	Attributes  []apigeeapi.Attribute     `json:"attributes"`
	Scopes      []string                  `json:"scopes"`
	ConsumerKey string                    `json:"consumerKey"`
	// Output-only fields a client may send back unchanged.
	ConsumerSecret string `json:"consumerSecret"`
	Status         string `json:"status"`
	IssuedAt       string `json:"issuedAt"`
	ExpiresAt      string `json:"expiresAt"`
}

// updateKey is keys.updateDeveloperAppKey: with ?action=approve|revoke it
// sets the key's status (204); otherwise it adds the body's products and
// replaces the attributes and scopes it gives
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.developers.apps.keys/updateDeveloperAppKey).
func (a *API) updateKey(r *http.Request) (int, any, error) {
	if r.URL.Query().Has("action") {
		act, err := action(r, "approve", "revoke")
		if err != nil {
			return 0, nil, err
		}
		return a.editKey(r, func(app *apigeeapi.DeveloperApp, i int) (int, any, error) {
			app.Credentials[i].Status = statusFor(act)
			return http.StatusNoContent, nil, nil
		})
	}
	var in keyUpdate
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.ConsumerKey != "" && in.ConsumerKey != r.PathValue("key") {
		return 0, nil, invalid("consumerKey: differs from the key in the path; a key cannot be renamed")
	}
	if err := validateAttributes("attributes", in.Attributes); err != nil {
		return 0, nil, err
	}
	names := make([]string, len(in.APIProducts))
	for i, p := range in.APIProducts {
		names[i] = p.APIProduct
	}
	ctx := r.Context()
	return a.editKey(r, func(app *apigeeapi.DeveloperApp, i int) (int, any, error) {
		c := &app.Credentials[i]
		added, err := a.products(ctx, "apiProducts", names)
		if err != nil {
			return 0, nil, err
		}
		for _, p := range added {
			if !slices.ContainsFunc(c.APIProducts, func(ref apigeeapi.APIProductRef) bool { return ref.APIProduct == p.Name }) {
				c.APIProducts = append(c.APIProducts, productRef(p))
			}
		}
		if in.Attributes != nil {
			c.Attributes = in.Attributes
		}
		if in.Scopes != nil {
			all, err := a.products(ctx, "apiProducts", credentialProducts(*c))
			if err != nil {
				return 0, nil, err
			}
			if err := checkScopes("scopes", in.Scopes, all); err != nil {
				return 0, nil, err
			}
			c.Scopes = in.Scopes
		}
		return http.StatusOK, *c, nil
	})
}

func credentialProducts(c apigeeapi.Credential) []string {
	names := make([]string, len(c.APIProducts))
	for i, p := range c.APIProducts {
		names[i] = p.APIProduct
	}
	return names
}

// createKey is keys.create: it adds a credential, imported (consumerKey and
// consumerSecret given) or generated (either left out — gatecheck's
// convenience), always approved
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.developers.apps.keys/create).
func (a *API) createKey(r *http.Request) (int, any, error) {
	var in apigeeapi.Credential
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	for _, f := range [][2]string{{"consumerKey", in.ConsumerKey}, {"consumerSecret", in.ConsumerSecret}} {
		if f[1] != "" && (len(f[1]) > maxImportedKey || !importedKey.MatchString(f[1])) {
			return 0, nil, invalid("%s: use letters, digits, underscores and hyphens, at most 2048 of them", f[0])
		}
	}
	if err := validateAttributes("attributes", in.Attributes); err != nil {
		return 0, nil, err
	}
	expires := neverExpires
	switch {
	case in.ExpiresInSeconds != "" && in.ExpiresAt != "":
		return 0, nil, invalid("expiresInSeconds and expiresAt: give one, not both")
	case in.ExpiresInSeconds != "":
		var err error
		if expires, err = a.expiresAt("expiresInSeconds", in.ExpiresInSeconds, time.Second); err != nil {
			return 0, nil, err
		}
	case in.ExpiresAt != "" && in.ExpiresAt != neverExpires:
		if n, err := strconv.ParseInt(in.ExpiresAt, 10, 64); err != nil || n <= 0 {
			return 0, nil, invalid("expiresAt: %q is not milliseconds since the epoch (or -1 for never)", in.ExpiresAt)
		}
		expires = in.ExpiresAt
	}
	ctx := r.Context()
	return a.editApp(r, func(app *apigeeapi.DeveloperApp) (int, any, error) {
		products, err := a.products(ctx, "apiProducts", credentialProducts(in))
		if err != nil {
			return 0, nil, err
		}
		if err := checkScopes("scopes", in.Scopes, products); err != nil {
			return 0, nil, err
		}
		c, err := a.newCredential(products, in.Scopes, expires)
		if err != nil {
			return 0, nil, err
		}
		if in.ConsumerKey != "" {
			c.ConsumerKey = in.ConsumerKey
		}
		if in.ConsumerSecret != "" {
			c.ConsumerSecret = in.ConsumerSecret
		}
		c.Attributes = in.Attributes
		if _, err := keyIndex(*app, c.ConsumerKey); err == nil {
			return 0, nil, conflict("app %q already has this consumer key", app.Name)
		}
		if owner, err := a.store.Consumer(ctx, c.ConsumerKey); err == nil {
			return 0, nil, conflict("consumer key already belongs to app %q", owner.App.Name)
		} else if !errors.Is(err, state.ErrNotFound) {
			return 0, nil, err
		}
		app.Credentials = append(app.Credentials, c)
		return http.StatusCreated, c, nil
	})
}

// productIndex finds the product on the credential.
func productIndex(c apigeeapi.Credential, product string) (int, error) {
	for i, p := range c.APIProducts {
		if p.APIProduct == product {
			return i, nil
		}
	}
	return 0, notFound("API product %q is not on this consumer key", product)
}

// setKeyProductStatus is keys.apiproducts.updateDeveloperAppKeyApiProduct:
// ?action=approve|revoke; it answers the empty object the discovery
// document names (google.protobuf.Empty).
func (a *API) setKeyProductStatus(r *http.Request) (int, any, error) {
	act, err := action(r, "approve", "revoke")
	if err != nil {
		return 0, nil, err
	}
	return a.editKey(r, func(app *apigeeapi.DeveloperApp, i int) (int, any, error) {
		j, err := productIndex(app.Credentials[i], r.PathValue("product"))
		if err != nil {
			return 0, nil, err
		}
		app.Credentials[i].APIProducts[j].Status = statusFor(act)
		return http.StatusOK, struct{}{}, nil
	})
}

// removeKeyProduct is keys.apiproducts.delete; it answers with the key.
func (a *API) removeKeyProduct(r *http.Request) (int, any, error) {
	return a.editKey(r, func(app *apigeeapi.DeveloperApp, i int) (int, any, error) {
		c := &app.Credentials[i]
		j, err := productIndex(*c, r.PathValue("product"))
		if err != nil {
			return 0, nil, err
		}
		c.APIProducts = slices.Delete(c.APIProducts, j, j+1)
		return http.StatusOK, *c, nil
	})
}
