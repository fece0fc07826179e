package mgmt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// MaxBodyBytes is the largest request body the API reads; a larger one is
// answered 413.
const MaxBodyBytes = 1 << 20

// DefaultOrg is the organisation served when Options.Org is empty.
const DefaultOrg = "gatecheck"

// DefaultTokenTTL is the lifetime of access tokens when Options.TokenTTL is
// zero.
const DefaultTokenTTL = time.Hour

// Options configures New. Store and AdminToken are required; every other
// zero value is documented beside its field.
type Options struct {
	// Store keeps developers, apps, keys, products and tokens.
	Store state.Store
	// Org is the one organisation served; others are 404. Empty means
	// DefaultOrg.
	Org string
	// AdminToken is the bearer token every management call must carry.
	AdminToken string
	// Clock stamps createdAt, issuedAt and expiries. Nil means the wall clock.
	Clock clock.Clock
	// Logger receives one debug line per request (route pattern, never the
	// path, which may hold a consumer key) and every internal error. Nil
	// discards.
	Logger *slog.Logger
	// IDs returns random text; letters and digits are taken from it for
	// developer and app ids, consumer keys, secrets and access tokens. Nil
	// means crypto/rand. Tests pass a seeded source for stable answers. It is
	// called under a lock, so it need not be safe for concurrent use.
	IDs func() string
	// TokenTTL is the lifetime of access tokens from /oauth/token. Zero
	// means DefaultTokenTTL.
	TokenTTL time.Duration
	// OnClockAdvance moves the emulator's clock for POST
	// /v1/emulator/clock:advance. Nil means that endpoint answers 501.
	OnClockAdvance func(time.Duration) error
	// Emulator, if set, serves every other /v1/emulator/ request (traces and
	// the like), with the request's full path, after the admin token is
	// checked. Nil means 404.
	Emulator http.Handler
}

// API is the management API. Create it with New; it is safe for concurrent
// use.
type API struct {
	store          state.Store
	org            string
	adminToken     []byte
	clock          clock.Clock
	log            *slog.Logger
	tokenTTL       time.Duration
	onClockAdvance func(time.Duration) error
	emulator       http.Handler
	handler        http.Handler

	// writes serialises read-modify-write sequences (an app and its keys are
	// one stored value), so concurrent calls do not lose each other's
	// changes.
	writes sync.Mutex

	idMu sync.Mutex
	ids  func() string
}

var orgName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// New checks opts, fills defaults and builds the API.
func New(opts Options) (*API, error) {
	if opts.Store == nil {
		return nil, errors.New("mgmt: Options.Store is required")
	}
	if opts.AdminToken == "" {
		return nil, errors.New("mgmt: Options.AdminToken is required")
	}
	if opts.Org == "" {
		opts.Org = DefaultOrg
	}
	if !orgName.MatchString(opts.Org) {
		return nil, fmt.Errorf("mgmt: organization %q: want lower-case letters, digits and hyphens, starting with a letter", opts.Org)
	}
	if opts.TokenTTL < 0 {
		return nil, fmt.Errorf("mgmt: Options.TokenTTL %v is negative", opts.TokenTTL)
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IDs == nil {
		opts.IDs = rand.Text
	}
	a := &API{
		store:          opts.Store,
		org:            opts.Org,
		adminToken:     []byte(opts.AdminToken),
		clock:          opts.Clock,
		log:            opts.Logger,
		tokenTTL:       opts.TokenTTL,
		onClockAdvance: opts.OnClockAdvance,
		emulator:       opts.Emulator,
		ids:            opts.IDs,
	}
	a.handler = a.routes()
	return a, nil
}

// Handler returns the API's http.Handler. Mount it at the root: the paths
// are Apigee's, absolute.
func (a *API) Handler() http.Handler { return a.handler }

// methods maps HTTP methods to the handler for one path.
type methods map[string]handlerFunc

// handlerFunc answers one request: a status and a JSON body (nil for none),
// or an error that serve turns into Google's error shape.
type handlerFunc func(r *http.Request) (int, any, error)

func (a *API) routes() http.Handler {
	mux := http.NewServeMux()
	org := func(path string, m methods) {
		mux.Handle("/v1/organizations/{org}"+path, a.admin(a.inOrg(a.serve(m))))
	}
	org("/developers", methods{http.MethodGet: a.listDevelopers, http.MethodPost: a.createDeveloper})
	org("/developers/{email}", methods{
		http.MethodGet: a.getDeveloper, http.MethodPut: a.updateDeveloper,
		http.MethodPost: a.setDeveloperStatus, http.MethodDelete: a.deleteDeveloper,
	})
	org("/developers/{email}/apps", methods{http.MethodGet: a.listApps, http.MethodPost: a.createApp})
	org("/developers/{email}/apps/{app}", methods{
		http.MethodGet: a.getApp, http.MethodPut: a.updateApp,
		http.MethodPost: a.setAppStatus, http.MethodDelete: a.deleteApp,
	})
	org("/developers/{email}/apps/{app}/keys", methods{http.MethodPost: a.createKey})
	org("/developers/{email}/apps/{app}/keys/create", methods{http.MethodPost: a.createKey})
	org("/developers/{email}/apps/{app}/keys/{key}", methods{
		http.MethodGet: a.getKey, http.MethodPost: a.updateKey, http.MethodDelete: a.deleteKey,
	})
	org("/developers/{email}/apps/{app}/keys/{key}/apiproducts/{product}", methods{
		http.MethodPost: a.setKeyProductStatus, http.MethodDelete: a.removeKeyProduct,
	})
	org("/apiproducts", methods{http.MethodGet: a.listProducts, http.MethodPost: a.createProduct})
	org("/apiproducts/{name}", methods{
		http.MethodGet: a.getProduct, http.MethodPut: a.updateProduct, http.MethodDelete: a.deleteProduct,
	})

	mux.Handle("/oauth/token", http.HandlerFunc(a.token))
	mux.Handle("/v1/emulator/clock:advance", a.admin(a.serve(methods{http.MethodPost: a.advanceClock})))
	mux.Handle("/v1/emulator/", a.admin(a.emulatorHandler()))
	mux.Handle("/", a.serve(nil))
	return mux
}

func (a *API) emulatorHandler() http.Handler {
	if a.emulator != nil {
		return a.emulator
	}
	return a.serve(nil)
}

// apiError is an answer in Google's error shape.
type apiError struct {
	code    int
	status  string
	message string
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf(format, args...)}
}

// serve dispatches on the method, caps the body, runs the handler and writes
// its answer; every error becomes Google's error shape here and nowhere
// else. A nil methods answers 404 for everything.
func (a *API) serve(m methods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		var (
			code int
			body any
			err  error
		)
		h, ok := m[r.Method]
		switch {
		case m == nil:
			err = notFound("no such resource: %s %s", r.Method, r.URL.Path)
		case !ok:
			allowed := make([]string, 0, len(m))
			for meth := range m {
				allowed = append(allowed, meth)
			}
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			err = &apiError{http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
				fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allowed, ", "))}
		default:
			code, body, err = h(r)
		}
		if err != nil {
			code, body = a.errorAnswer(r, err)
		}
		a.log.Debug("mgmt request", "method", r.Method, "route", r.Pattern, "status", code)
		writeJSON(w, code, body)
	})
}

// errorAnswer translates an error into a status and Google's error body.
func (a *API) errorAnswer(r *http.Request, err error) (int, apigeeapi.Error) {
	var ae *apiError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &tooBig):
		ae = &apiError{http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT",
			fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, state.ErrNotFound):
		ae = &apiError{http.StatusNotFound, "NOT_FOUND", err.Error()}
	case errors.Is(err, state.ErrExists):
		ae = &apiError{http.StatusConflict, "ALREADY_EXISTS", err.Error()}
	case errors.Is(err, state.ErrInvalid):
		ae = &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		ae = &apiError{http.StatusServiceUnavailable, "UNAVAILABLE", "request cancelled"}
	default:
		a.log.Error("mgmt internal error", "method", r.Method, "route", r.Pattern, "err", err)
		ae = &apiError{http.StatusInternalServerError, "INTERNAL", "internal error; see the gatecheck log"}
	}
	return ae.code, apigeeapi.Error{Err: apigeeapi.ErrorBody{Code: ae.code, Message: ae.message, Status: ae.status}}
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	if code == http.StatusNoContent || body == nil {
		w.WriteHeader(code)
		return
	}
	data, err := json.Marshal(body)
	if err != nil {
		// Only our own types are written; this is a bug.
		http.Error(w, `{"error":{"code":500,"message":"encoding the answer failed","status":"INTERNAL"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// unauthenticated is Google's answer to a missing or wrong bearer token.
var unauthenticated = apigeeapi.Error{Err: apigeeapi.ErrorBody{
	Code: http.StatusUnauthorized,
	Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie " +
		"or other valid authentication credential. See " +
		"https://developers.google.com/identity/sign-in/web/devconsole-project.",
	Status: "UNAUTHENTICATED",
}}

// admin lets through requests that carry the admin bearer token.
func (a *API) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), a.adminToken) != 1 {
			a.log.Debug("mgmt request", "method", r.Method, "route", r.Pattern, "status", http.StatusUnauthorized)
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatecheck"`)
			writeJSON(w, http.StatusUnauthorized, unauthenticated)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// inOrg answers 404 for organisations other than the one served.
func (a *API) inOrg(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if org := r.PathValue("org"); org != a.org {
			code, body := a.errorAnswer(r, notFound("organization %q not found; this gatecheck serves %q", org, a.org))
			writeJSON(w, code, body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, as Google's API frontend rejects unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return err
		case errors.Is(err, io.EOF):
			return invalid("request body is empty; want a JSON object")
		}
		return invalid("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("invalid JSON body: data after the JSON object")
	}
	return nil
}

// expand reports whether ?expand=true was asked for.
func expand(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("expand")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid("expand=%q: want true or false", v)
	}
	return b, nil
}

// action returns ?action= when it is one of allowed.
func action(r *http.Request, allowed ...string) (string, error) {
	v := r.URL.Query().Get("action")
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", invalid("action=%q: want one of %s", v, strings.Join(allowed, ", "))
}

// millis formats t as Apigee does: milliseconds since the epoch, as a string.
func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (a *API) now() string { return millis(a.clock.Now()) }

// random returns n letters and digits taken from Options.IDs.
func (a *API) random(n int) (string, error) {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	buf := make([]byte, 0, n)
	for empty := 0; len(buf) < n; {
		before := len(buf)
		for _, c := range []byte(a.ids()) {
			if len(buf) < n && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				buf = append(buf, c)
			}
		}
		if len(buf) == before {
			if empty++; empty > 100 {
				return "", errors.New("mgmt: Options.IDs keeps returning no letters or digits")
			}
		}
	}
	return string(buf), nil
}

// uuid returns a version-4 UUID made from Options.IDs, the shape of Apigee's
// developerId and appId.
func (a *API) uuid() (string, error) {
	seed, err := a.random(32)
	if err != nil {
		return "", err
	}
	b := sha256.Sum256([]byte(seed))
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
