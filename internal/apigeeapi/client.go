package apigeeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxAnswerBytes bounds how much of an answer the client reads.
const maxAnswerBytes = 16 << 20

// Client calls Apigee's management API. Against gatecheck's fake, baseURL is
// the management URL the sandbox prints and token its admin token; against a
// real Apigee organisation, baseURL is https://apigee.googleapis.com and token
// a Google access token (`gcloud auth print-access-token`) — the paths and
// JSON are the same. A Client is safe for concurrent use.
type Client struct {
	baseURL string
	org     string
	token   string
	hc      *http.Client

	// TokenURL is where AccessToken posts. NewClient sets it to baseURL +
	// "/oauth/token", gatecheck's token endpoint. A real Apigee mints tokens
	// in an API proxy, not in the management API: set TokenURL to that
	// proxy's endpoint (for example
	// https://api.example.com/oauth/client_credential/accesstoken).
	TokenURL string
}

// NewClient returns a client for organisation org at baseURL (without a
// trailing /v1), authenticating with the bearer token. A nil httpClient means
// http.DefaultClient.
func NewClient(baseURL, org, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	baseURL = strings.TrimRight(baseURL, "/")
	return &Client{baseURL: baseURL, org: org, token: token, hc: httpClient, TokenURL: baseURL + "/oauth/token"}
}

// APIError is an answer other than 2xx. From the management API it carries
// Google's error ({"error":{"code","message","status"}}); from the token
// endpoint, Apigee's fault ({"fault":{"faultstring","detail":{"errorcode"}}}),
// with Status the errorcode and Message the faultstring.
type APIError struct {
	StatusCode int    // the HTTP status
	Status     string // Google's canonical status ("NOT_FOUND") or the fault's errorcode
	Message    string
}

// Error says what failed.
func (e *APIError) Error() string {
	return fmt.Sprintf("apigee: %d %s: %s", e.StatusCode, e.Status, e.Message)
}

// parseError builds an APIError from an answer's status and body.
func parseError(code int, body []byte) *APIError {
	e := &APIError{StatusCode: code, Status: http.StatusText(code)}
	var g Error
	var f Fault
	switch {
	case json.Unmarshal(body, &g) == nil && g.Err.Status != "":
		e.Status, e.Message = g.Err.Status, g.Err.Message
	case json.Unmarshal(body, &f) == nil && f.Fault.Detail.ErrorCode != "":
		e.Status, e.Message = f.Fault.Detail.ErrorCode, f.Fault.FaultString
	default:
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		e.Message = msg
	}
	return e
}

// path builds an organisation path from escaped segments.
func (c *Client) path(segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1/organizations/")
	b.WriteString(url.PathEscape(c.org))
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends one management call: in (if not nil) as JSON, out (if not nil)
// decoded from a 2xx answer.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	contentType := "application/json"
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("apigee: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	} else if method == http.MethodPost {
		// Apigee's ?action= calls want an empty octet-stream body.
		contentType = "application/octet-stream"
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("apigee: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil || method == http.MethodPost {
		req.Header.Set("Content-Type", contentType)
	}
	return c.send(req, out)
}

// send does req and decodes a 2xx answer into out.
func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("apigee: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("apigee: %s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("apigee: %s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func actionQuery(action string) url.Values { return url.Values{"action": {action}} }

var expandQuery = url.Values{"expand": {"true"}}

// CreateDeveloper creates a developer (email, firstName, lastName and
// userName are required) and returns it as stored.
func (c *Client) CreateDeveloper(ctx context.Context, d Developer) (Developer, error) {
	var out Developer
	return out, c.do(ctx, http.MethodPost, c.path("developers"), nil, d, &out)
}

// GetDeveloper returns the developer with this email.
func (c *Client) GetDeveloper(ctx context.Context, email string) (Developer, error) {
	var out Developer
	return out, c.do(ctx, http.MethodGet, c.path("developers", email), nil, nil, &out)
}

// ListDevelopers returns every developer, expanded.
func (c *Client) ListDevelopers(ctx context.Context) ([]Developer, error) {
	var out Developers
	err := c.do(ctx, http.MethodGet, c.path("developers"), expandQuery, nil, &out)
	return out.Developer, err
}

// UpdateDeveloper replaces the details of the developer with d's email.
func (c *Client) UpdateDeveloper(ctx context.Context, d Developer) (Developer, error) {
	var out Developer
	return out, c.do(ctx, http.MethodPut, c.path("developers", d.Email), nil, d, &out)
}

// SetDeveloperStatus makes the developer active or inactive.
func (c *Client) SetDeveloperStatus(ctx context.Context, email string, active bool) error {
	act := "inactive"
	if active {
		act = "active"
	}
	return c.do(ctx, http.MethodPost, c.path("developers", email), actionQuery(act), nil, nil)
}

// DeleteDeveloper deletes the developer and their apps.
func (c *Client) DeleteDeveloper(ctx context.Context, email string) error {
	return c.do(ctx, http.MethodDelete, c.path("developers", email), nil, nil, nil)
}

// CreateApp creates an app of the developer (name, apiProducts, scopes,
// attributes, callbackUrl, keyExpiresIn) and returns it with its generated
// credential.
func (c *Client) CreateApp(ctx context.Context, email string, app DeveloperApp) (DeveloperApp, error) {
	var out DeveloperApp
	return out, c.do(ctx, http.MethodPost, c.path("developers", email, "apps"), nil, app, &out)
}

// GetApp returns the developer's app.
func (c *Client) GetApp(ctx context.Context, email, name string) (DeveloperApp, error) {
	var out DeveloperApp
	return out, c.do(ctx, http.MethodGet, c.path("developers", email, "apps", name), nil, nil, &out)
}

// ListApps returns the developer's apps, expanded.
func (c *Client) ListApps(ctx context.Context, email string) ([]DeveloperApp, error) {
	var out DeveloperApps
	err := c.do(ctx, http.MethodGet, c.path("developers", email, "apps"), expandQuery, nil, &out)
	return out.App, err
}

// UpdateApp replaces the app's attributes and callback URL and adds a
// credential for products it did not have.
func (c *Client) UpdateApp(ctx context.Context, email string, app DeveloperApp) (DeveloperApp, error) {
	var out DeveloperApp
	return out, c.do(ctx, http.MethodPut, c.path("developers", email, "apps", app.Name), nil, app, &out)
}

// DeleteApp deletes the developer's app.
func (c *Client) DeleteApp(ctx context.Context, email, name string) error {
	return c.do(ctx, http.MethodDelete, c.path("developers", email, "apps", name), nil, nil, nil)
}

// ApproveApp sets the app's status to approved.
func (c *Client) ApproveApp(ctx context.Context, email, name string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", name), actionQuery("approve"), nil, nil)
}

// RevokeApp sets the app's status to revoked: none of its keys work.
func (c *Client) RevokeApp(ctx context.Context, email, name string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", name), actionQuery("revoke"), nil, nil)
}

// CreateKey adds a credential to the app: imported when key.ConsumerKey and
// key.ConsumerSecret are set (a real Apigee requires them), generated by
// gatecheck otherwise. key.ExpiresInSeconds sets its lifetime.
func (c *Client) CreateKey(ctx context.Context, email, app string, key Credential) (Credential, error) {
	var out Credential
	return out, c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys"), nil, key, &out)
}

// GetKey returns one credential of the app.
func (c *Client) GetKey(ctx context.Context, email, app, key string) (Credential, error) {
	var out Credential
	return out, c.do(ctx, http.MethodGet, c.path("developers", email, "apps", app, "keys", key), nil, nil, &out)
}

// DeleteKey removes a credential from the app.
func (c *Client) DeleteKey(ctx context.Context, email, app, key string) error {
	return c.do(ctx, http.MethodDelete, c.path("developers", email, "apps", app, "keys", key), nil, nil, nil)
}

// ApproveKey sets the credential's status to approved.
func (c *Client) ApproveKey(ctx context.Context, email, app, key string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys", key), actionQuery("approve"), nil, nil)
}

// RevokeKey sets the credential's status to revoked.
func (c *Client) RevokeKey(ctx context.Context, email, app, key string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys", key), actionQuery("revoke"), nil, nil)
}

// keyProducts is the body of Apigee's updateDeveloperAppKey that adds
// products: their names.
type keyProducts struct {
	APIProducts []string `json:"apiProducts"`
}

// AddKeyProducts adds products to the credential (approved or pending by
// each product's approvalType) and returns the credential.
func (c *Client) AddKeyProducts(ctx context.Context, email, app, key string, products []string) (Credential, error) {
	var out Credential
	return out, c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys", key), nil,
		keyProducts{APIProducts: products}, &out)
}

// RemoveKeyProduct removes a product from the credential.
func (c *Client) RemoveKeyProduct(ctx context.Context, email, app, key, product string) error {
	return c.do(ctx, http.MethodDelete, c.path("developers", email, "apps", app, "keys", key, "apiproducts", product), nil, nil, nil)
}

// ApproveKeyProduct approves one product of the credential.
func (c *Client) ApproveKeyProduct(ctx context.Context, email, app, key, product string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys", key, "apiproducts", product),
		actionQuery("approve"), nil, nil)
}

// RevokeKeyProduct revokes one product of the credential.
func (c *Client) RevokeKeyProduct(ctx context.Context, email, app, key, product string) error {
	return c.do(ctx, http.MethodPost, c.path("developers", email, "apps", app, "keys", key, "apiproducts", product),
		actionQuery("revoke"), nil, nil)
}

// CreateProduct creates an API product and returns it as stored.
func (c *Client) CreateProduct(ctx context.Context, p APIProduct) (APIProduct, error) {
	var out APIProduct
	return out, c.do(ctx, http.MethodPost, c.path("apiproducts"), nil, p, &out)
}

// GetProduct returns the API product.
func (c *Client) GetProduct(ctx context.Context, name string) (APIProduct, error) {
	var out APIProduct
	return out, c.do(ctx, http.MethodGet, c.path("apiproducts", name), nil, nil, &out)
}

// UpdateProduct replaces the API product with p's name.
func (c *Client) UpdateProduct(ctx context.Context, p APIProduct) (APIProduct, error) {
	var out APIProduct
	return out, c.do(ctx, http.MethodPut, c.path("apiproducts", p.Name), nil, p, &out)
}

// DeleteProduct deletes the API product.
func (c *Client) DeleteProduct(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.path("apiproducts", name), nil, nil, nil)
}

// ListProducts returns every API product, expanded.
func (c *Client) ListProducts(ctx context.Context) ([]APIProduct, error) {
	var out APIProducts
	err := c.do(ctx, http.MethodGet, c.path("apiproducts"), expandQuery, nil, &out)
	return out.APIProduct, err
}

// AccessToken asks TokenURL for a client_credentials token for the consumer
// key and secret (sent as HTTP Basic auth), with the scopes if any. A fault
// is an *APIError whose Status is the fault's errorcode.
func (c *Client) AccessToken(ctx context.Context, key, secret string, scopes []string) (AccessToken, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return AccessToken{}, fmt.Errorf("apigee: token: %w", err)
	}
	req.SetBasicAuth(key, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var out AccessToken
	if err := c.send(req, &out); err != nil {
		return AccessToken{}, err
	}
	if out.AccessToken == "" {
		return AccessToken{}, errors.New("apigee: token: the answer has no access_token")
	}
	return out, nil
}

// AdvanceClock moves gatecheck's emulator clock forward by d (POST
// /v1/emulator/clock:advance). It is gatecheck's own call; a real Apigee
// answers 404, and a gatecheck on real time 501.
func (c *Client) AdvanceClock(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/v1/emulator/clock:advance", nil, ClockAdvance{Duration: d.String()}, nil)
}
