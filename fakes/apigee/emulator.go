package apigee

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// TracesHandler serves the decision traces under the emulator prefix, for
// admins only:
//
//	GET /v1/emulator/traces?limit=N   the latest traces, newest first
//	GET /v1/emulator/traces/{id}      one trace
//
// The management API mounts it; the traces of every runtime sharing traces
// are served.
func TracesHandler(traces *Traces, adminToken string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminAuthorized(r, adminToken) {
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "method "+r.Method+" is not allowed here")
			return
		}
		rest := strings.TrimPrefix(r.URL.Path, "/v1/emulator/traces")
		switch {
		case rest == "" || rest == "/":
			limit := 0
			if l := r.URL.Query().Get("limit"); l != "" {
				n, err := strconv.Atoi(l)
				if err != nil || n < 0 {
					writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "limit must be a non-negative integer")
					return
				}
				limit = n
			}
			writeJSON(w, http.StatusOK, map[string]any{"traces": traces.Latest(limit)})
		case strings.HasPrefix(rest, "/"):
			tr, ok := traces.Get(strings.TrimPrefix(rest, "/"))
			if !ok {
				writeError(w, http.StatusNotFound, "NOT_FOUND", "trace "+strings.TrimPrefix(rest, "/")+" not found (the ring keeps the latest traces only)")
				return
			}
			writeJSON(w, http.StatusOK, tr)
		default:
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no such emulator resource")
		}
	})
}

func adminAuthorized(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, apigeeapi.Error{Err: apigeeapi.ErrorBody{Code: code, Message: msg, Status: status}})
}
