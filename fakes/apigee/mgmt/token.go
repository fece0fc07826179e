package mgmt

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// fault is one of the Apigee faults the token endpoint answers with.
type fault struct {
	status int
	code   string
	text   string
}

func (a *API) writeFault(w http.ResponseWriter, r *http.Request, f fault, args ...any) {
	text := f.text
	if len(args) > 0 {
		text = fmt.Sprintf(f.text, args...)
	}
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatecheck"`)
	}
	a.log.Debug("mgmt request", "method", r.Method, "route", r.Pattern, "status", f.status, "fault", f.code)
	writeJSON(w, f.status, apigeeapi.Fault{Fault: apigeeapi.FaultBody{
		FaultString: text, Detail: apigeeapi.FaultDetail{ErrorCode: f.code},
	}})
}

// token mints a client_credentials access token, as an OAuthV2
// GenerateAccessToken policy behind POST /oauth/token would. The grant type
// is read from the form body or the query (Apigee's samples put it in the
// query); the key and secret from HTTP Basic auth or the client_id and
// client_secret form fields.
func (a *API) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.writeFault(w, r, faultMethod, r.Method)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.writeFault(w, r, faultTooBig, MaxBodyBytes)
			return
		}
		a.writeFault(w, r, faultBadForm, err)
		return
	}
	switch grant := r.Form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		a.writeFault(w, r, faultMissingGrant)
		return
	default:
		a.writeFault(w, r, faultUnsupportedGrant, grant)
		return
	}
	key, secret, ok := r.BasicAuth()
	if !ok {
		key, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if key == "" {
		a.writeFault(w, r, faultInvalidClient)
		return
	}
	ctx := r.Context()
	c, err := a.store.Consumer(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		a.writeFault(w, r, faultInvalidClient)
		return
	}
	if err != nil {
		a.log.Error("mgmt token: consumer lookup", "err", err)
		a.writeFault(w, r, faultInternal)
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Credential.ConsumerSecret)) != 1 {
		a.writeFault(w, r, faultInvalidClient)
		return
	}
	now := a.clock.Now()
	if f, bad := consumerFault(c, now.UnixMilli()); bad {
		a.writeFault(w, r, f)
		return
	}

	var products []string
	allowed := slices.Concat(c.Credential.Scopes, c.App.Scopes)
	for _, p := range c.Products {
		if productApproved(c.Credential, p.Name) {
			products = append(products, p.Name)
			allowed = append(allowed, p.Scopes...)
		}
	}
	if len(products) == 0 {
		a.writeFault(w, r, faultNoProduct)
		return
	}
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	granted := allowed
	if requested := strings.Fields(r.Form.Get("scope")); len(requested) > 0 {
		for _, s := range requested {
			if !slices.Contains(allowed, s) {
				a.writeFault(w, r, faultInvalidScope, s)
				return
			}
		}
		granted = requested
	}

	access, err := a.random(32)
	if err != nil {
		a.log.Error("mgmt token: generate", "err", err)
		a.writeFault(w, r, faultInternal)
		return
	}
	t := state.Token{
		AccessToken: access, ConsumerKey: key, Scopes: granted,
		IssuedAt: now, ExpiresAt: now.Add(a.tokenTTL),
	}
	if err := a.store.PutToken(ctx, t); err != nil {
		a.log.Error("mgmt token: store", "err", err)
		a.writeFault(w, r, faultInternal)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	a.log.Debug("mgmt request", "method", r.Method, "route", r.Pattern, "status", http.StatusOK)
	writeJSON(w, http.StatusOK, apigeeapi.AccessToken{
		AccessToken: access,
		TokenType:   "BearerToken",
		ExpiresIn:   strconv.FormatInt(int64(a.tokenTTL.Seconds()), 10),
		IssuedAt:    millis(now),
		ClientID:    key,
		// Apigee puts the app's id here, not its name.
		ApplicationName:    c.App.AppID,
		Scope:              strings.Join(granted, " "),
		Status:             statusApproved,
		APIProductList:     "[" + strings.Join(products, ", ") + "]",
		APIProductListJSON: products,
		DeveloperEmail:     c.Developer.Email,
		OrganizationName:   a.org,
	})
}

// consumerFault says why a credential may not get a token: its developer,
// app or key is not active, approved or unexpired.
func consumerFault(c state.Consumer, nowMillis int64) (fault, bool) {
	switch {
	case c.Developer.Status != "" && c.Developer.Status != "active":
		return faultDeveloperInactive, true
	case c.App.Status != statusApproved:
		return faultAppNotApproved, true
	case c.Credential.Status != statusApproved:
		return faultKeyNotApproved, true
	}
	if exp := c.Credential.ExpiresAt; exp != "" && exp != neverExpires {
		if ms, err := strconv.ParseInt(exp, 10, 64); err == nil && ms > 0 && nowMillis >= ms {
			return faultKeyExpired, true
		}
	}
	return fault{}, false
}

func productApproved(c apigeeapi.Credential, product string) bool {
	for _, p := range c.APIProducts {
		if p.APIProduct == product {
			return p.Status == statusApproved
		}
	}
	return false
}
