// Package mgmt is the fake Apigee's management API: an http.Handler that
// answers Apigee's paths and JSON shapes
// (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest) over a
// state.Store, so scenarios, the sandbox and a real Apigee organisation are
// provisioned through one client (internal/apigeeapi.Client).
//
// Served, under /v1/organizations/{org}/ and with "Authorization: Bearer
// <AdminToken>":
//
//	POST   developers                                   create (409 if it exists)
//	GET    developers[?expand=true]                     list
//	GET    developers/{email}                           get (with the names of its apps)
//	PUT    developers/{email}                           update
//	POST   developers/{email}?action=active|inactive    set status (204)
//	DELETE developers/{email}                           delete, with its apps
//	POST   developers/{email}/apps                      create an app and its first key
//	GET    developers/{email}/apps[?expand=true]        list
//	GET    developers/{email}/apps/{app}                get
//	PUT    developers/{email}/apps/{app}                update
//	POST   developers/{email}/apps/{app}?action=approve|revoke         app status (204)
//	DELETE developers/{email}/apps/{app}                delete
//	POST   developers/{email}/apps/{app}/keys           create (import) a key
//	POST   developers/{email}/apps/{app}/keys/create    the same (Apigee's second path)
//	GET    developers/{email}/apps/{app}/keys/{key}     get
//	POST   developers/{email}/apps/{app}/keys/{key}?action=approve|revoke  key status (204)
//	POST   developers/{email}/apps/{app}/keys/{key}     add products, replace attributes/scopes
//	DELETE developers/{email}/apps/{app}/keys/{key}     delete
//	POST   developers/{email}/apps/{app}/keys/{key}/apiproducts/{product}?action=approve|revoke
//	DELETE developers/{email}/apps/{app}/keys/{key}/apiproducts/{product}
//	POST   apiproducts                                  create (validated)
//	GET    apiproducts[?expand=true]                    list
//	GET    apiproducts/{name}                           get
//	PUT    apiproducts/{name}                           update (validated)
//	DELETE apiproducts/{name}                           delete
//
// and besides:
//
//	POST /oauth/token                  client_credentials tokens (no admin token; Apigee fault JSON)
//	POST /v1/emulator/clock:advance    {"duration":"61s"} → Options.OnClockAdvance (admin token)
//	*    /v1/emulator/...              Options.Emulator, if set (admin token)
//
// Errors are Google's shape, {"error":{"code":404,"message":"...","status":
// "NOT_FOUND"}}; the token endpoint answers Apigee's fault JSON instead, as an
// OAuthV2 policy would. Where Apigee's documentation leaves a behaviour open
// the choice is written beside the code and listed in choices.go.
package mgmt
