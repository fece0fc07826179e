package mgmt_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// fuzzStore holds what allRoutes' paths name: developer a@example.com, app
// x with key k (secret s), product p.
func fuzzStore(t *testing.T) state.Store {
	s := state.NewMemory()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutDeveloper(ctx, apigeeapi.Developer{Email: "a@example.com", FirstName: "a", LastName: "b", UserName: "c", Status: "active"}))
	must(s.PutProduct(ctx, apigeeapi.APIProduct{Name: "p", ApprovalType: "auto", Scopes: []string{"a", "b"}}))
	must(s.PutApp(ctx, "a@example.com", apigeeapi.DeveloperApp{Name: "x", Status: "approved", Credentials: []apigeeapi.Credential{{
		ConsumerKey: "k", ConsumerSecret: "s", Status: "approved", ExpiresAt: "-1",
		APIProducts: []apigeeapi.APIProductRef{{APIProduct: "p", Status: "approved"}},
	}}}))
	return s
}

// FuzzHandler sends arbitrary bodies to every route: no panic, no 5xx, and
// every error answer is JSON in Google's shape (Apigee's fault shape from
// the token endpoint).
func FuzzHandler(f *testing.F) {
	for i := range allRoutes {
		f.Add(uint8(i), `{}`)
	}
	f.Add(uint8(1), `{"email":"b@example.com","firstName":"a","lastName":"b","userName":"c"}`)
	f.Add(uint8(7), `{"name":"y","apiProducts":["p"],"keyExpiresIn":"1000","scopes":["a"]}`)
	f.Add(uint8(15), `{"apiProducts":["p",{"apiproduct":"p"}],"scopes":["b"]}`)
	f.Add(uint8(12), `{"consumerKey":"abc","consumerSecret":"def","expiresInSeconds":"10"}`)
	f.Add(uint8(21), `{"name":"q","operationGroup":{"operationConfigs":[{"apiSource":"s","operations":[{"resource":"/x"}],"quota":{"limit":"1","interval":"1","timeUnit":"day"}}]}}`)
	f.Add(uint8(25), `{"duration":"90s"}`)
	f.Add(uint8(len(allRoutes)), "grant_type=client_credentials&client_id=k&client_secret=s&scope=a+b")
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		c := clock.NewManual(epoch)
		api, err := mgmt.New(mgmt.Options{
			Store: fuzzStore(t), AdminToken: adminToken, Clock: c, IDs: seededIDs(3),
			OnClockAdvance: func(d time.Duration) error { c.Advance(d); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		method, path, contentType := "POST", "/oauth/token", "application/x-www-form-urlencoded"
		if int(route) < len(allRoutes) {
			method, path, contentType = allRoutes[route].method, allRoutes[route].path, "application/json"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, rec.Body)
		}
		if rec.Code < 400 {
			return
		}
		if path == "/oauth/token" {
			var fault apigeeapi.Fault
			if err := json.Unmarshal(rec.Body.Bytes(), &fault); err != nil || fault.Fault.Detail.ErrorCode == "" {
				t.Fatalf("token error is not a fault: %s", rec.Body)
			}
			return
		}
		var g apigeeapi.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &g); err != nil || g.Err.Code != rec.Code || g.Err.Status == "" || g.Err.Message == "" {
			t.Fatalf("%s %s: error is not Google's shape for %d: %s", method, path, rec.Code, rec.Body)
		}
	})
}
