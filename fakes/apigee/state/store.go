package state

import (
	"context"
	"errors"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// ErrNotFound is returned (wrapped) when a developer, app, key, product or
// token does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when creating something that already exists.
var ErrExists = errors.New("already exists")

// ErrInvalid is returned (wrapped) when a value cannot be stored as given: an
// empty email, app, product, consumer key, token or counter key, or a negative
// weight or limit.
var ErrInvalid = errors.New("invalid")

// Store is the runtime's state: the organisation's developers, apps, keys and
// products, the access tokens it has issued, and the quota counters. The
// in-memory store is the default; the file store (bbolt) keeps everything
// across restarts. Implementations are safe for concurrent use.
type Store interface {
	Directory
	Counters
	// Close releases the store; a file store closes its file.
	Close() error
}

// Directory holds developers, apps (with their credentials), products and
// access tokens, in Apigee's management API shapes. Writes are whole-object
// puts: the management API layer owns Apigee's rules (generated IDs, key
// formats, timestamps), the store only keeps and indexes what it is given.
type Directory interface {
	PutDeveloper(ctx context.Context, d apigeeapi.Developer) error
	GetDeveloper(ctx context.Context, email string) (apigeeapi.Developer, error)
	ListDevelopers(ctx context.Context) ([]apigeeapi.Developer, error)
	// DeleteDeveloper deletes the developer and their apps.
	DeleteDeveloper(ctx context.Context, email string) error

	// PutApp stores an app of a developer, replacing one of the same name; the
	// consumer keys of its credentials are indexed for Consumer. A consumer key
	// already used by another app is ErrExists.
	PutApp(ctx context.Context, email string, app apigeeapi.DeveloperApp) error
	GetApp(ctx context.Context, email, name string) (apigeeapi.DeveloperApp, error)
	ListApps(ctx context.Context, email string) ([]apigeeapi.DeveloperApp, error)
	DeleteApp(ctx context.Context, email, name string) error

	PutProduct(ctx context.Context, p apigeeapi.APIProduct) error
	GetProduct(ctx context.Context, name string) (apigeeapi.APIProduct, error)
	ListProducts(ctx context.Context) ([]apigeeapi.APIProduct, error)
	DeleteProduct(ctx context.Context, name string) error

	// Consumer finds the credential with this consumer key, with its app, the
	// app's developer and the products the credential lists (products that no
	// longer exist are left out). ErrNotFound when no credential has the key.
	Consumer(ctx context.Context, consumerKey string) (Consumer, error)

	PutToken(ctx context.Context, t Token) error
	// GetToken returns the token; expired tokens are still returned (the
	// caller decides), deleted ones are ErrNotFound.
	GetToken(ctx context.Context, accessToken string) (Token, error)
}

// Consumer is everything needed to authorise a request made with one
// credential.
type Consumer struct {
	Developer  apigeeapi.Developer
	App        apigeeapi.DeveloperApp
	Credential apigeeapi.Credential
	Products   []apigeeapi.APIProduct
}

// Token is an issued OAuth access token.
type Token struct {
	AccessToken string
	ConsumerKey string
	Scopes      []string
	IssuedAt    time.Time
	ExpiresAt   time.Time
}

// Counters are the quota and spike-arrest counters. Several runtime replicas
// sharing one Store share their counts (Apigee's Distributed quotas).
type Counters interface {
	// Take atomically checks and updates one counter; see TakeRequest.
	Take(ctx context.Context, req TakeRequest) (TakeResult, error)
	// ResetCounters forgets every counter whose key starts with prefix.
	ResetCounters(ctx context.Context, prefix string) error
}

// TakeRequest asks to count Weight against Limit for counter Key.
//
// A counter is a series of buckets numbered by the caller (for example the
// unix minute). The count is the sum of the Window buckets ending at Bucket
// (Window 1 for calendar and flexi quotas; a rolling window is many small
// buckets). Then:
//   - Enforce && Count (a normal quota): allowed when count+Weight <= Limit; the
//     weight is added only when allowed, so exactly Limit units are admitted.
//   - Enforce only (EnforceOnly): allowed when count < Limit; nothing is added.
//   - Count only (CountOnly): always allowed; the weight is added.
//
// Buckets older than Window before Bucket may be dropped; Expires is when the
// whole counter may be forgotten.
type TakeRequest struct {
	Key     string
	Bucket  int64
	Window  int64
	Weight  int64
	Limit   int64
	Enforce bool
	Count   bool
	Expires time.Time
}

// TakeResult is the count after the take and whether it was allowed.
type TakeResult struct {
	Used    int64
	Allowed bool
}
