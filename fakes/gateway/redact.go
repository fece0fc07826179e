package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// Secrets never reach the logs: these headers and query parameters are
// replaced by a marker before anything is logged.
var (
	secretHeaders = map[string]bool{
		"authorization": true, "proxy-authorization": true, "x-api-key": true,
		"x-apikey": true, "apikey": true, "cookie": true, "set-cookie": true,
	}
	secretParams = map[string]bool{
		"apikey": true, "api_key": true, "x-api-key": true, "key": true,
		"access_token": true, "client_secret": true,
	}
)

const redacted = "[REDACTED]"

// redactHeaders flattens headers for a log line, secrets replaced.
func redactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		if secretHeaders[lk] {
			out[lk] = redacted
		} else {
			out[lk] = strings.Join(v, ",")
		}
	}
	return out
}

// redactURI replaces the values of secret query parameters in a request
// target, leaving the rest as it was.
func redactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secretParams[strings.ToLower(name)] {
			parts[i] = k + "=" + redacted
		}
	}
	return path + "?" + strings.Join(parts, "&")
}
