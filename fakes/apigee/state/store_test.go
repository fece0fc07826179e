package state

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// conformance describes one Store implementation for testStore.
type conformance struct {
	// open returns an empty store reading time from c; the test closes it.
	open func(t *testing.T, c clock.Clock) Store
	// takes is how many takes each of 64 goroutines makes in the
	// concurrency test (a file store fsyncs every take).
	takes int
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testStore holds a Store implementation to the behaviour the Store
// interface documents. Every implementation runs it.
func testStore(t *testing.T, impl conformance) {
	open := func(t *testing.T) (Store, *clock.Manual) {
		c := clock.NewManual(epoch)
		s := impl.open(t, c)
		t.Cleanup(func() { _ = s.Close() })
		return s, c
	}
	ctx := context.Background()

	t.Run("Developers", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		_, err := s.GetDeveloper(ctx, "ana@example.com")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.PutDeveloper(ctx, developer("Zed@Example.com")))
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		got, err := s.GetDeveloper(ctx, "zed@example.com")
		require.NoError(t, err, "emails compare without case")
		assert.Equal(t, developer("Zed@Example.com"), got)
		bare := apigeeapi.Developer{Email: "bare@example.com", Attributes: []apigeeapi.Attribute{}, Apps: []string{}}
		require.NoError(t, s.PutDeveloper(ctx, bare))
		got, err = s.GetDeveloper(ctx, "bare@example.com")
		require.NoError(t, err)
		assert.Equal(t, apigeeapi.Developer{Email: "bare@example.com"}, got, "empty lists come back nil, as from JSON")
		require.NoError(t, s.DeleteDeveloper(ctx, "bare@example.com"))

		upd := developer("ana@example.com")
		upd.FirstName = "Ana Maria"
		require.NoError(t, s.PutDeveloper(ctx, upd))
		list, err := s.ListDevelopers(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		assert.Equal(t, "ana@example.com", list[0].Email, "ordered by email")
		assert.Equal(t, "Ana Maria", list[0].FirstName, "put replaces")
		assert.Equal(t, "Zed@Example.com", list[1].Email)

		require.NoError(t, s.DeleteDeveloper(ctx, "ZED@example.com"))
		require.ErrorIs(t, s.DeleteDeveloper(ctx, "zed@example.com"), ErrNotFound)
		require.ErrorIs(t, s.PutDeveloper(ctx, apigeeapi.Developer{}), ErrInvalid)
	})

	t.Run("EmptyLists", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		devs, err := s.ListDevelopers(ctx)
		require.NoError(t, err)
		assert.NotNil(t, devs)
		assert.Empty(t, devs)
		prods, err := s.ListProducts(ctx)
		require.NoError(t, err)
		assert.NotNil(t, prods)
		assert.Empty(t, prods)
		_, err = s.ListApps(ctx, "nobody@example.com")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		apps, err := s.ListApps(ctx, "ana@example.com")
		require.NoError(t, err)
		assert.NotNil(t, apps)
		assert.Empty(t, apps)
	})

	t.Run("Apps", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		require.ErrorIs(t, s.PutApp(ctx, "ana@example.com", app("chat", "key-chat-0001")), ErrNotFound,
			"an app needs its developer")
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		require.NoError(t, s.PutApp(ctx, "ana@example.com", app("zeta", "key-zeta-0001")))
		require.NoError(t, s.PutApp(ctx, "Ana@example.com", app("chat", "key-chat-0001")))
		got, err := s.GetApp(ctx, "ana@example.com", "chat")
		require.NoError(t, err)
		assert.Equal(t, app("chat", "key-chat-0001"), got)
		_, err = s.GetApp(ctx, "ana@example.com", "nope")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetApp(ctx, "bob@example.com", "chat")
		require.ErrorIs(t, err, ErrNotFound)

		list, err := s.ListApps(ctx, "ana@example.com")
		require.NoError(t, err)
		require.Len(t, list, 2)
		assert.Equal(t, "chat", list[0].Name, "ordered by name")
		assert.Equal(t, "zeta", list[1].Name)

		require.NoError(t, s.DeleteApp(ctx, "ana@example.com", "zeta"))
		require.ErrorIs(t, s.DeleteApp(ctx, "ana@example.com", "zeta"), ErrNotFound)
		_, err = s.Consumer(ctx, "key-zeta-0001")
		require.ErrorIs(t, err, ErrNotFound, "a deleted app's key is forgotten")

		require.ErrorIs(t, s.PutApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{}), ErrInvalid)
		require.ErrorIs(t, s.PutApp(ctx, "ana@example.com", app("x", "")), ErrInvalid)
		require.ErrorIs(t, s.PutApp(ctx, "", app("x", "key-x-0001")), ErrInvalid)
	})

	t.Run("ConsumerKeyBelongsToOneApp", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		require.NoError(t, s.PutDeveloper(ctx, developer("bob@example.com")))
		require.NoError(t, s.PutApp(ctx, "ana@example.com", app("chat", "shared-key-0001")))
		err := s.PutApp(ctx, "bob@example.com", app("chat", "shared-key-0001"))
		require.ErrorIs(t, err, ErrExists)
		assert.NotContains(t, err.Error(), "shared-key-0001", "errors do not print whole keys")
		require.ErrorIs(t, s.PutApp(ctx, "ana@example.com", app("other", "shared-key-0001")), ErrExists)
		_, err = s.GetApp(ctx, "bob@example.com", "chat")
		require.ErrorIs(t, err, ErrNotFound, "a refused put stores nothing")
		// The same app may be put again with its own key.
		require.NoError(t, s.PutApp(ctx, "ana@example.com", app("chat", "shared-key-0001")))
		// Two credentials of one app cannot share a key.
		a := app("twice", "dup-key-00001")
		a.Credentials = append(a.Credentials, a.Credentials[0])
		require.ErrorIs(t, s.PutApp(ctx, "ana@example.com", a), ErrExists)
	})

	t.Run("Consumer", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		require.NoError(t, s.PutProduct(ctx, product("gold")))
		require.NoError(t, s.PutProduct(ctx, product("bronze")))
		a := app("chat", "key-one-00001", "gold", "gone", "bronze")
		a.Credentials = append(a.Credentials, apigeeapi.Credential{ConsumerKey: "key-two-00002", Status: "revoked"})
		require.NoError(t, s.PutApp(ctx, "ana@example.com", a))

		c, err := s.Consumer(ctx, "key-one-00001")
		require.NoError(t, err)
		assert.Equal(t, "ana@example.com", c.Developer.Email)
		assert.Equal(t, a, c.App)
		assert.Equal(t, a.Credentials[0], c.Credential)
		require.Len(t, c.Products, 2, "a product that does not exist is left out")
		assert.Equal(t, "gold", c.Products[0].Name, "in the credential's order")
		assert.Equal(t, "bronze", c.Products[1].Name)

		c2, err := s.Consumer(ctx, "key-two-00002")
		require.NoError(t, err)
		assert.Equal(t, "revoked", c2.Credential.Status)
		assert.Empty(t, c2.Products)

		_, err = s.Consumer(ctx, "no-such-key-01")
		require.ErrorIs(t, err, ErrNotFound)

		// Replacing the app without a credential forgets its key.
		a.Credentials = a.Credentials[:1]
		require.NoError(t, s.PutApp(ctx, "ana@example.com", a))
		_, err = s.Consumer(ctx, "key-two-00002")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.Consumer(ctx, "key-one-00001")
		require.NoError(t, err)

		// Product changes show through at once.
		require.NoError(t, s.DeleteProduct(ctx, "gold"))
		c, err = s.Consumer(ctx, "key-one-00001")
		require.NoError(t, err)
		require.Len(t, c.Products, 1)
		assert.Equal(t, "bronze", c.Products[0].Name)
	})

	t.Run("DeleteDeveloperCascades", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		require.NoError(t, s.PutDeveloper(ctx, developer("bob@example.com")))
		require.NoError(t, s.PutApp(ctx, "ana@example.com", app("a1", "key-a1-000001")))
		require.NoError(t, s.PutApp(ctx, "ana@example.com", app("a2", "key-a2-000001")))
		require.NoError(t, s.PutApp(ctx, "bob@example.com", app("b1", "key-b1-000001")))
		require.NoError(t, s.PutToken(ctx, token("tok-a1-0000001", "key-a1-000001")))
		require.NoError(t, s.PutToken(ctx, token("tok-b1-0000001", "key-b1-000001")))

		require.NoError(t, s.DeleteDeveloper(ctx, "ana@example.com"))
		_, err := s.GetApp(ctx, "ana@example.com", "a1")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.Consumer(ctx, "key-a2-000001")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetToken(ctx, "tok-a1-0000001")
		require.ErrorIs(t, err, ErrNotFound, "tokens of deleted keys are deleted")
		_, err = s.GetToken(ctx, "tok-b1-0000001")
		require.NoError(t, err, "other developers keep their tokens")
		_, err = s.Consumer(ctx, "key-b1-000001")
		require.NoError(t, err)

		// The keys are free again, and a developer of the same email starts empty.
		require.NoError(t, s.PutDeveloper(ctx, developer("ana@example.com")))
		apps, err := s.ListApps(ctx, "ana@example.com")
		require.NoError(t, err)
		assert.Empty(t, apps)
		require.NoError(t, s.PutApp(ctx, "bob@example.com", app("b2", "key-a1-000001")))
	})

	t.Run("Products", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		_, err := s.GetProduct(ctx, "gold")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.PutProduct(ctx, product("silver")))
		require.NoError(t, s.PutProduct(ctx, product("gold")))
		got, err := s.GetProduct(ctx, "gold")
		require.NoError(t, err)
		assert.Equal(t, product("gold"), got)
		list, err := s.ListProducts(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		assert.Equal(t, "gold", list[0].Name)
		assert.Equal(t, "silver", list[1].Name)
		require.NoError(t, s.DeleteProduct(ctx, "gold"))
		require.ErrorIs(t, s.DeleteProduct(ctx, "gold"), ErrNotFound)
		require.ErrorIs(t, s.PutProduct(ctx, apigeeapi.APIProduct{}), ErrInvalid)
	})

	t.Run("Tokens", func(t *testing.T) {
		t.Parallel()
		s, c := open(t)
		tok := token("tok-000000001", "key-000000001")
		tok.ExpiresAt = c.Now().Add(-time.Minute)
		require.NoError(t, s.PutToken(ctx, tok))
		got, err := s.GetToken(ctx, "tok-000000001")
		require.NoError(t, err, "expired tokens are still returned")
		assert.True(t, got.ExpiresAt.Equal(tok.ExpiresAt))
		assert.True(t, got.IssuedAt.Equal(tok.IssuedAt))
		assert.Equal(t, tok.Scopes, got.Scopes)
		assert.Equal(t, tok.ConsumerKey, got.ConsumerKey)
		_, err = s.GetToken(ctx, "tok-000000002")
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, s.PutToken(ctx, Token{}), ErrInvalid)
	})

	t.Run("DeepCopies", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		d := developer("ana@example.com")
		require.NoError(t, s.PutDeveloper(ctx, d))
		d.Attributes[0].Value = "changed after put"
		gotD, err := s.GetDeveloper(ctx, "ana@example.com")
		require.NoError(t, err)
		gotD.Attributes[0].Value = "changed after get"
		gotD.Apps[0] = "changed"
		assert.Equal(t, developer("ana@example.com"), mustDeveloper(t, s, "ana@example.com"))

		p := product("gold")
		require.NoError(t, s.PutProduct(ctx, p))
		p.OperationGroup.OperationConfigs[0].Operations[0].Methods[0] = "DELETE"
		gotP, err := s.GetProduct(ctx, "gold")
		require.NoError(t, err)
		gotP.OperationGroup.OperationConfigs[0].Quota.Limit = "1"
		gotP.LLMOperationGroup.OperationConfigs[0].LLMOperations[0].Model = "changed"
		gotP.Scopes[0] = "changed"
		list, err := s.ListProducts(ctx)
		require.NoError(t, err)
		list[0].Attributes[0].Name = "changed"
		again, err := s.GetProduct(ctx, "gold")
		require.NoError(t, err)
		assert.Equal(t, product("gold"), again)

		a := app("chat", "key-00000000001", "gold")
		require.NoError(t, s.PutApp(ctx, "ana@example.com", a))
		a.Credentials[0].APIProducts[0].Status = "revoked"
		c, err := s.Consumer(ctx, "key-00000000001")
		require.NoError(t, err)
		c.Credential.APIProducts[0].Status = "revoked"
		c.App.Credentials[0].Scopes[0] = "changed"
		c.Products[0].Scopes[0] = "changed"
		c.Developer.Apps[0] = "changed"
		c, err = s.Consumer(ctx, "key-00000000001")
		require.NoError(t, err)
		assert.Equal(t, app("chat", "key-00000000001", "gold"), c.App)
		assert.Equal(t, product("gold"), c.Products[0])

		tok := token("tok-000000001", "key-00000000001")
		require.NoError(t, s.PutToken(ctx, tok))
		tok.Scopes[0] = "changed"
		gotT, err := s.GetToken(ctx, "tok-000000001")
		require.NoError(t, err)
		assert.Equal(t, "read", gotT.Scopes[0])
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.PutDeveloper(cctx, developer("ana@example.com")), context.Canceled)
		_, err := s.Take(cctx, TakeRequest{Key: "k", Limit: 1, Weight: 1, Enforce: true, Count: true})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Consumer(cctx, "k")
		require.ErrorIs(t, err, context.Canceled)
	})

	t.Run("TakeQuota", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		req := TakeRequest{Key: "q", Bucket: 100, Window: 1, Weight: 2, Limit: 5, Enforce: true, Count: true}
		want := []TakeResult{{2, true}, {4, true}, {4, false}}
		for i, w := range want {
			got, err := s.Take(ctx, req)
			require.NoError(t, err)
			assert.Equal(t, w, got, "take %d", i)
		}
		req.Weight = 1
		got, err := s.Take(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{5, true}, got, "exactly Limit units are admitted")
		got, err = s.Take(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{5, false}, got)
		req.Bucket = 101
		got, err = s.Take(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{1, true}, got, "a new bucket starts empty with Window 1")
		other := req
		other.Key = "q2"
		got, err = s.Take(ctx, other)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{1, true}, got, "keys count apart")
	})

	t.Run("TakeRollingWindow", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		take := func(bucket, weight int64) TakeResult {
			t.Helper()
			r, err := s.Take(ctx, TakeRequest{Key: "roll", Bucket: bucket, Window: 3, Weight: weight,
				Limit: 10, Enforce: true, Count: true})
			require.NoError(t, err)
			return r
		}
		assert.Equal(t, TakeResult{4, true}, take(10, 4))
		assert.Equal(t, TakeResult{7, true}, take(11, 3))
		assert.Equal(t, TakeResult{10, true}, take(12, 3))
		assert.Equal(t, TakeResult{10, false}, take(12, 1))
		// Bucket 13's window is 11..13: bucket 10's 4 units have rolled out.
		assert.Equal(t, TakeResult{10, true}, take(13, 4))
		assert.Equal(t, TakeResult{10, false}, take(13, 1))
		// Bucket 16's window is 14..16: all rolled out.
		assert.Equal(t, TakeResult{9, true}, take(16, 9))
		// A late request for an older bucket still sees its window (13..15,
		// holding bucket 13's 4 units); bucket 16's units are not in it.
		assert.Equal(t, TakeResult{5, true}, take(15, 1))
	})

	t.Run("TakeEnforceOnlyCountOnly", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		base := TakeRequest{Key: "tokens", Bucket: 7, Window: 1, Limit: 100}
		enforce, count := base, base
		enforce.Enforce, enforce.Weight = true, 1
		count.Count = true

		got, err := s.Take(ctx, enforce)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{0, true}, got, "EnforceOnly adds nothing")
		count.Weight = 150
		got, err = s.Take(ctx, count)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{150, true}, got, "CountOnly is always allowed, even past the limit")
		got, err = s.Take(ctx, enforce)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{150, false}, got, "EnforceOnly denies once count >= limit")
		count.Weight = 0
		got, err = s.Take(ctx, count)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{150, true}, got)

		// Enforce: allowed while count < limit, whatever the weight.
		e2 := enforce
		e2.Key, e2.Weight = "tokens-2", 1000
		got, err = s.Take(ctx, e2)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{0, true}, got)
		// Neither flag: a read.
		peek := base
		got, err = s.Take(ctx, peek)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{150, true}, got)
	})

	t.Run("TakeInvalid", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		for _, req := range []TakeRequest{
			{Key: "", Limit: 1, Weight: 1},
			{Key: "k", Limit: 1, Weight: -1},
			{Key: "k", Limit: -1, Weight: 1},
		} {
			_, err := s.Take(ctx, req)
			require.ErrorIs(t, err, ErrInvalid, "%+v", req)
		}
	})

	t.Run("TakeExactUnderConcurrency", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		const goroutines = 64
		limit := int64(goroutines * impl.takes / 3)
		var allowed, denied atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for range impl.takes {
					r, err := s.Take(ctx, TakeRequest{Key: "burst", Bucket: 1, Window: 1, Weight: 1,
						Limit: limit, Enforce: true, Count: true})
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						allowed.Add(1)
					} else {
						denied.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, limit, allowed.Load(), "exactly the limit is admitted")
		assert.Equal(t, int64(goroutines*impl.takes)-limit, denied.Load())
		r, err := s.Take(ctx, TakeRequest{Key: "burst", Bucket: 1, Window: 1})
		require.NoError(t, err)
		assert.Equal(t, limit, r.Used)
	})

	t.Run("ResetCounters", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		for _, k := range []string{"quota/app1/a", "quota/app1/b", "quota/app2/a", "spike/app1"} {
			_, err := s.Take(ctx, TakeRequest{Key: k, Bucket: 1, Weight: 1, Limit: 1, Enforce: true, Count: true})
			require.NoError(t, err)
		}
		require.NoError(t, s.ResetCounters(ctx, "quota/app1/"))
		used := func(k string) int64 {
			r, err := s.Take(ctx, TakeRequest{Key: k, Bucket: 1})
			require.NoError(t, err)
			return r.Used
		}
		assert.Equal(t, int64(0), used("quota/app1/a"))
		assert.Equal(t, int64(0), used("quota/app1/b"))
		assert.Equal(t, int64(1), used("quota/app2/a"))
		assert.Equal(t, int64(1), used("spike/app1"))
		require.NoError(t, s.ResetCounters(ctx, ""))
		assert.Equal(t, int64(0), used("quota/app2/a"))
		assert.Equal(t, int64(0), used("spike/app1"))
	})

	t.Run("CounterExpiry", func(t *testing.T) {
		t.Parallel()
		s, c := open(t)
		req := TakeRequest{Key: "flexi", Bucket: 0, Window: 1, Weight: 1, Limit: 1, Enforce: true, Count: true,
			Expires: c.Now().Add(time.Minute)}
		r, err := s.Take(ctx, req)
		require.NoError(t, err)
		assert.True(t, r.Allowed)
		r, err = s.Take(ctx, req)
		require.NoError(t, err)
		assert.False(t, r.Allowed)
		c.Advance(59 * time.Second)
		r, err = s.Take(ctx, req)
		require.NoError(t, err)
		assert.False(t, r.Allowed, "not expired yet")
		c.Advance(time.Second)
		r, err = s.Take(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, TakeResult{1, true}, r, "an expired counter starts over, same bucket or not")

		never := TakeRequest{Key: "never", Bucket: 0, Weight: 1, Limit: 1, Enforce: true, Count: true}
		_, err = s.Take(ctx, never)
		require.NoError(t, err)
		c.Advance(1000 * time.Hour)
		r, err = s.Take(ctx, never)
		require.NoError(t, err)
		assert.False(t, r.Allowed, "a zero Expires never expires")
	})
}

func mustDeveloper(t *testing.T, s Store, email string) apigeeapi.Developer {
	t.Helper()
	d, err := s.GetDeveloper(context.Background(), email)
	require.NoError(t, err)
	return d
}

func developer(email string) apigeeapi.Developer {
	return apigeeapi.Developer{
		Email: email, FirstName: "Ana", LastName: "Lima", UserName: "ana",
		DeveloperID: "dev-" + email, Status: "active",
		Attributes: []apigeeapi.Attribute{{Name: "tier", Value: "gold"}},
		Apps:       []string{"chat"},
		CreatedAt:  "1767225600000", LastModifiedAt: "1767225600000",
	}
}

func app(name, key string, products ...string) apigeeapi.DeveloperApp {
	var refs []apigeeapi.APIProductRef
	for _, p := range products {
		refs = append(refs, apigeeapi.APIProductRef{APIProduct: p, Status: "approved"})
	}
	a := apigeeapi.DeveloperApp{
		AppID: "app-" + name, Name: name, DeveloperID: "dev-1",
		APIProducts: products,
		Attributes:  []apigeeapi.Attribute{{Name: "team", Value: "ml"}},
		Scopes:      []string{"read"},
		Status:      "approved",
		CreatedAt:   "1767225600000",
	}
	if key != "" {
		a.Credentials = []apigeeapi.Credential{{
			ConsumerKey: key, ConsumerSecret: "secret-" + key, APIProducts: refs,
			Scopes: []string{"read"}, Status: "approved", IssuedAt: "1767225600000", ExpiresAt: "-1",
		}}
	} else {
		a.Credentials = []apigeeapi.Credential{{}}
	}
	return a
}

func product(name string) apigeeapi.APIProduct {
	return apigeeapi.APIProduct{
		Name: name, DisplayName: name, ApprovalType: "auto",
		Attributes: []apigeeapi.Attribute{{Name: "access", Value: "private"}},
		Scopes:     []string{"read", "write"},
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{
			APISource:  "inference-gateway-apim",
			Operations: []apigeeapi.Operation{{Resource: "/v1/chat/completions", Methods: []string{"POST"}}},
			Quota:      &apigeeapi.Quota{Limit: "100", Interval: "1", TimeUnit: "minute"},
		}}},
		LLMOperationGroup: &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{{
			APISource:     "inference-gateway-apim",
			LLMOperations: []apigeeapi.LLMOperation{{Resource: "/v1/chat/completions", Model: "tiny"}},
			LLMTokenQuota: &apigeeapi.Quota{Limit: "1000", Interval: "1", TimeUnit: "minute"},
		}}},
	}
}

func token(access, key string) Token {
	return Token{
		AccessToken: access, ConsumerKey: key, Scopes: []string{"read"},
		IssuedAt: epoch, ExpiresAt: epoch.Add(time.Hour),
	}
}
