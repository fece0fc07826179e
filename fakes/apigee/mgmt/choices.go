package mgmt

import "net/http"

// Where Apigee's documentation leaves a behaviour open, the choice is made
// here, in one place, so it is easy to change:
//
//   - List calls without expand=true answer Apigee X's typed list shapes
//     (ListOfDevelopersResponse etc.) with only the identifying fields —
//     {"developer":[{"email":...}]}, {"app":[{"appId":...,"name":...}]},
//     {"apiProduct":[{"name":...}]} — not Apigee Edge's bare arrays of names.
//   - Creates answer 201 Created with the created resource; the actions
//     (?action=...) on developers, apps and keys answer 204 No Content, as
//     Apigee documents for apps; the per-product action answers {} (the
//     discovery document's google.protobuf.Empty).
//   - Deletes answer 200 with the deleted resource, as Apigee does.
//   - An unknown organisation is 404 NOT_FOUND (Apigee says 403
//     PERMISSION_DENIED for organisations the caller cannot see).
//   - A method a path does not have is 405 with an Allow header.
//   - Request bodies are decoded strictly: unknown fields are 400, as
//     Google's API frontend rejects them.
//   - Creating a key without consumerKey or consumerSecret generates them
//     (Apigee's keys.create imports given ones).
//   - /oauth/token: a credential none of whose products is approved gets no
//     token (keymanagement.service.InvalidAPICallAsNoApiProductMatchFound,
//     401); allowed scopes are those of the approved products plus the app's
//     and the key's; no scope asked for grants all of them; an unknown scope
//     is 400 oauth.v2.InvalidScope. Faults are checked in the order:
//     client id and secret, developer active, app approved, key approved,
//     key unexpired, an approved product, scopes.

// Lengths of generated credentials: a 32-character consumer key as Apigee
// generates, and a secret of the same length.
const (
	consumerKeyLength    = 32
	consumerSecretLength = 32
	neverExpires         = "-1"
)

// Status values of apps, credentials and credential products.
const (
	statusApproved = "approved"
	statusRevoked  = "revoked"
	statusPending  = "pending"
)

// The token endpoint's faults. reference/apigee.md §3 gives the codes (some
// marked UNCONFIRMED there); the fault strings in quotes there are Apigee's,
// the others are ours.
var (
	faultInvalidClient    = fault{http.StatusUnauthorized, "oauth.v2.InvalidClientIdentifier", "Invalid client identifier {0}"}
	faultMissingGrant     = fault{http.StatusBadRequest, "oauth.v2.InvalidRequest", "Required param : grant_type"}
	faultUnsupportedGrant = fault{http.StatusBadRequest, "oauth.v2.UnsupportedGrantType", "Unsupported grant type : %s"}
	faultInvalidScope     = fault{http.StatusBadRequest, "oauth.v2.InvalidScope", "Invalid scope : %s"}
	// The same codes and texts as the runtime's VerifyAPIKey (policy/faults.go).
	faultAppNotApproved    = fault{http.StatusUnauthorized, "keymanagement.service.invalid_client-app_not_approved", "Application is not approved"}
	faultKeyNotApproved    = fault{http.StatusUnauthorized, "oauth.v2.ApiKeyNotApproved", "ApiKey not approved"}
	faultKeyExpired        = fault{http.StatusUnauthorized, "keymanagement.service.consumer_key_expired", "Consumer key is expired"}
	faultDeveloperInactive = fault{http.StatusUnauthorized, "keymanagement.service.DeveloperStatusNotActive", "Developer Status is not Active"}
	faultNoProduct         = fault{http.StatusUnauthorized, "keymanagement.service.InvalidAPICallAsNoApiProductMatchFound", "Invalid API call as no apiproduct match found"}
	faultMethod            = fault{http.StatusMethodNotAllowed, "oauth.v2.InvalidRequest", "Method not allowed : %s; use POST"}
	faultTooBig            = fault{http.StatusRequestEntityTooLarge, "protocol.http.TooBigBody", "Request body is larger than %d bytes"}
	faultBadForm           = fault{http.StatusBadRequest, "oauth.v2.InvalidRequest", "Invalid request body : %s"}
	faultInternal          = fault{http.StatusInternalServerError, "gatecheck.InternalError", "Internal error; see the gatecheck log"}
)
