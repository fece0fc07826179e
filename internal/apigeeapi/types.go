package apigeeapi

import (
	"bytes"
	"encoding/json"
)

// Attribute is a name/value pair on a product, app or developer.
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Developer is an app developer.
type Developer struct {
	Email            string      `json:"email"`
	FirstName        string      `json:"firstName,omitempty"`
	LastName         string      `json:"lastName,omitempty"`
	UserName         string      `json:"userName,omitempty"`
	DeveloperID      string      `json:"developerId,omitempty"`
	Status           string      `json:"status,omitempty"` // active | inactive
	Attributes       []Attribute `json:"attributes,omitempty"`
	Apps             []string    `json:"apps,omitempty"`
	CreatedAt        string      `json:"createdAt,omitempty"`
	LastModifiedAt   string      `json:"lastModifiedAt,omitempty"`
	OrganizationName string      `json:"organizationName,omitempty"`
}

// Developers is the list answer for developers (Apigee's
// ListOfDevelopersResponse). Without expand=true each entry carries only the
// email.
type Developers struct {
	Developer []Developer `json:"developer"`
}

// APIProductRef is a product on a credential, with its approval status.
//
// Apigee answers with objects but takes bare product names in requests
// (DeveloperAppKey.apiProducts is typed "any" in the discovery document), so
// a JSON string decodes too, as a product with no status.
type APIProductRef struct {
	APIProduct string `json:"apiproduct"`
	Status     string `json:"status"` // approved | revoked | pending
}

// UnmarshalJSON accepts {"apiproduct":"p","status":"approved"} or "p".
func (r *APIProductRef) UnmarshalJSON(data []byte) error {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '"' {
		*r = APIProductRef{}
		return json.Unmarshal(trimmed, &r.APIProduct)
	}
	type plain APIProductRef // without this method
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*r = APIProductRef(p)
	return nil
}

// Credential is one consumer key/secret pair of an app (Apigee's
// DeveloperAppKey).
type Credential struct {
	ConsumerKey    string          `json:"consumerKey"`
	ConsumerSecret string          `json:"consumerSecret,omitempty"`
	APIProducts    []APIProductRef `json:"apiProducts,omitempty"`
	Attributes     []Attribute     `json:"attributes,omitempty"`
	Scopes         []string        `json:"scopes,omitempty"`
	Status         string          `json:"status,omitempty"`    // approved | revoked | pending
	IssuedAt       string          `json:"issuedAt,omitempty"`  // ms since epoch, as a string
	ExpiresAt      string          `json:"expiresAt,omitempty"` // ms since epoch, "-1" for never
	// ExpiresInSeconds is input only, on create: the key's lifetime in
	// seconds, -1 or absent for never.
	ExpiresInSeconds string `json:"expiresInSeconds,omitempty"`
}

// DeveloperApp is an app of a developer.
type DeveloperApp struct {
	AppID          string       `json:"appId,omitempty"`
	Name           string       `json:"name,omitempty"`
	AppFamily      string       `json:"appFamily,omitempty"`
	DeveloperID    string       `json:"developerId,omitempty"`
	APIProducts    []string     `json:"apiProducts,omitempty"`
	Attributes     []Attribute  `json:"attributes,omitempty"`
	CallbackURL    string       `json:"callbackUrl,omitempty"`
	Scopes         []string     `json:"scopes,omitempty"`
	Status         string       `json:"status,omitempty"`       // approved | revoked | pending
	KeyExpiresIn   string       `json:"keyExpiresIn,omitempty"` // ms, as a string; only on create
	Credentials    []Credential `json:"credentials,omitempty"`
	CreatedAt      string       `json:"createdAt,omitempty"`
	LastModifiedAt string       `json:"lastModifiedAt,omitempty"`
}

// DeveloperApps is the list answer for a developer's apps (Apigee's
// ListDeveloperAppsResponse). Without expand=true each entry carries only the
// appId and name.
type DeveloperApps struct {
	App []DeveloperApp `json:"app"`
}

// Quota is a request quota: limit requests per interval × timeUnit.
type Quota struct {
	Limit    string `json:"limit"`
	Interval string `json:"interval"`
	TimeUnit string `json:"timeUnit"` // minute | hour | day | month
}

// Operation is a REST operation an operation config grants: a resource path
// (with * and ** wildcards) and its methods (empty for all).
type Operation struct {
	Resource string   `json:"resource"`
	Methods  []string `json:"methods,omitempty"`
}

// OperationConfig binds operations of one API source (the proxy; for the
// Apigee Operator, the APIMExtensionPolicy's name) to a quota and attributes.
type OperationConfig struct {
	APISource  string      `json:"apiSource"`
	Operations []Operation `json:"operations"`
	Quota      *Quota      `json:"quota,omitempty"`
	Attributes []Attribute `json:"attributes,omitempty"`
}

// OperationGroup is a product's REST operations.
type OperationGroup struct {
	OperationConfigs    []OperationConfig `json:"operationConfigs"`
	OperationConfigType string            `json:"operationConfigType,omitempty"` // proxy | remoteservice
}

// LLMOperation is an operation of an AI product: a resource, its methods and
// the model it grants.
type LLMOperation struct {
	Resource string   `json:"resource"`
	Methods  []string `json:"methods,omitempty"`
	Model    string   `json:"model"`
}

// LLMOperationConfig binds LLM operations of one API source to a token quota.
type LLMOperationConfig struct {
	APISource     string         `json:"apiSource"`
	LLMOperations []LLMOperation `json:"llmOperations"`
	LLMTokenQuota *Quota         `json:"llmTokenQuota,omitempty"`
	Attributes    []Attribute    `json:"attributes,omitempty"`
}

// LLMOperationGroup is an AI product's model operations.
type LLMOperationGroup struct {
	OperationConfigs []LLMOperationConfig `json:"operationConfigs"`
}

// APIProduct is an API product.
type APIProduct struct {
	Name              string             `json:"name"`
	DisplayName       string             `json:"displayName,omitempty"`
	Description       string             `json:"description,omitempty"`
	ApprovalType      string             `json:"approvalType,omitempty"` // auto | manual
	Attributes        []Attribute        `json:"attributes,omitempty"`
	Environments      []string           `json:"environments,omitempty"`
	Proxies           []string           `json:"proxies,omitempty"`
	APIResources      []string           `json:"apiResources,omitempty"`
	Scopes            []string           `json:"scopes,omitempty"`
	QuotaCounterScope string             `json:"quotaCounterScope,omitempty"`
	Quota             string             `json:"quota,omitempty"`
	QuotaInterval     string             `json:"quotaInterval,omitempty"`
	QuotaTimeUnit     string             `json:"quotaTimeUnit,omitempty"`
	OperationGroup    *OperationGroup    `json:"operationGroup,omitempty"`
	LLMOperationGroup *LLMOperationGroup `json:"llmOperationGroup,omitempty"`
	CreatedAt         string             `json:"createdAt,omitempty"`
	LastModifiedAt    string             `json:"lastModifiedAt,omitempty"`
}

// APIProducts is the list answer for products (Apigee's
// ListApiProductsResponse). Without expand=true each entry carries only the
// name.
type APIProducts struct {
	APIProduct []APIProduct `json:"apiProduct"`
}

// AccessToken is the answer of POST /oauth/token (client_credentials), in the
// shape Apigee's OAuthV2 GenerateAccessToken policy returns.
type AccessToken struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       string `json:"expires_in"` // seconds, as a string
	IssuedAt        string `json:"issued_at"`  // ms since epoch
	ClientID        string `json:"client_id"`
	ApplicationName string `json:"application_name"`
	Scope           string `json:"scope"`
	Status          string `json:"status"`
	APIProductList  string `json:"api_product_list"` // "[p1, p2]"
	// APIProductListJSON is the same list as a JSON array.
	APIProductListJSON []string `json:"api_product_list_json,omitempty"`
	DeveloperEmail     string   `json:"developer.email,omitempty"`
	OrganizationName   string   `json:"organization_name"`
}

// Fault is Apigee's error body:
// {"fault":{"faultstring":"Invalid ApiKey","detail":{"errorcode":"oauth.v2.InvalidApiKey"}}}.
type Fault struct {
	Fault FaultBody `json:"fault"`
}

// FaultBody is the inside of Fault.
type FaultBody struct {
	FaultString string      `json:"faultstring"`
	Detail      FaultDetail `json:"detail"`
}

// FaultDetail carries the error code.
type FaultDetail struct {
	ErrorCode string `json:"errorcode"`
}

// Error is the Google API error shape the management API answers with
// ({"error":{"code":404,"message":"...","status":"NOT_FOUND"}}).
type Error struct {
	Err ErrorBody `json:"error"`
}

// ErrorBody is the inside of Error.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// ClockAdvance is the body and the answer of gatecheck's own POST
// /v1/emulator/clock:advance (no such call exists on a real Apigee): how far
// to move the emulator's clock, as a Go duration ("61s", "1h"), and, in the
// answer, the emulator's time afterwards in ms since epoch.
type ClockAdvance struct {
	Duration string `json:"duration"`
	Now      string `json:"now,omitempty"`
}
