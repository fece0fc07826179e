package state

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

func TestFileConformance(t *testing.T) {
	t.Parallel()
	testStore(t, conformance{
		open: func(t *testing.T, c clock.Clock) Store {
			f, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), WithClock(c))
			require.NoError(t, err)
			return f
		},
		takes: 6,
	})
}

func TestFileSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	c := clock.NewManual(epoch)

	f, err := OpenFile(path, WithClock(c))
	require.NoError(t, err)
	require.NoError(t, f.PutDeveloper(ctx, developer("ana@example.com")))
	require.NoError(t, f.PutProduct(ctx, product("gold")))
	require.NoError(t, f.PutApp(ctx, "ana@example.com", app("chat", "key-00000000001", "gold")))
	require.NoError(t, f.PutToken(ctx, token("tok-000000001", "key-00000000001")))
	quota := TakeRequest{Key: "quota/chat", Bucket: 5, Window: 1, Weight: 3, Limit: 4,
		Enforce: true, Count: true, Expires: epoch.Add(time.Hour)}
	_, err = f.Take(ctx, quota)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	f, err = OpenFile(path, WithClock(c))
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	assert.Equal(t, developer("ana@example.com"), mustDeveloper(t, f, "ana@example.com"))
	p, err := f.GetProduct(ctx, "gold")
	require.NoError(t, err)
	assert.Equal(t, product("gold"), p)
	a, err := f.GetApp(ctx, "ana@example.com", "chat")
	require.NoError(t, err)
	assert.Equal(t, app("chat", "key-00000000001", "gold"), a)
	cons, err := f.Consumer(ctx, "key-00000000001")
	require.NoError(t, err, "the key index survives")
	assert.Equal(t, "chat", cons.App.Name)
	tok, err := f.GetToken(ctx, "tok-000000001")
	require.NoError(t, err)
	assert.True(t, tok.ExpiresAt.Equal(epoch.Add(time.Hour)))
	r, err := f.Take(ctx, quota)
	require.NoError(t, err)
	assert.Equal(t, TakeResult{Used: 3, Allowed: false}, r, "the counter survives")
}

func TestOpenFileRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	foreignBolt := func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("etcd"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		}))
		require.NoError(t, db.Close())
	}
	ours := func(mutate func(tx *bolt.Tx) error) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			f, err := OpenFile(path)
			require.NoError(t, err)
			require.NoError(t, f.PutDeveloper(context.Background(), developer("ana@example.com")))
			require.NoError(t, f.db.Update(mutate))
			require.NoError(t, f.Close())
		}
	}
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, path string)
		want  string
	}{
		{"garbage", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600))
		}, "is not a gatecheck state file or corrupt"},
		{"short garbage", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("{}\n"), 0o600))
		}, "is not a gatecheck state file or corrupt"},
		{"another bbolt database", foreignBolt, "no meta bucket"},
		{"a newer format", ours(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte("gatecheck-state/99"))
		}), `format "gatecheck-state/99"`},
		{"a damaged value", ours(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketDevelopers).Put([]byte("ana@example.com"), []byte("{not json"))
		}), "developers"},
		{"a missing bucket", ours(func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketCounters)
		}), "no counters bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "state.db")
			tc.write(t, path)
			before, err := os.ReadFile(path)
			require.NoError(t, err)

			f, err := OpenFile(path, WithLockTimeout(100*time.Millisecond))
			if f != nil {
				_ = f.Close()
			}
			require.ErrorIs(t, err, ErrCorrupt)
			assert.Contains(t, err.Error(), path, "the error names the file")
			assert.Contains(t, err.Error(), tc.want)

			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(before, after), "the file is left exactly as it was")
		})
	}
}

func TestOpenFileDoesNotWriteUntilAsked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := OpenFile(path)
	require.NoError(t, err)
	require.NoError(t, f.PutDeveloper(context.Background(), developer("ana@example.com")))
	require.NoError(t, f.Close())
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	f, err = OpenFile(path)
	require.NoError(t, err)
	_, err = f.ListDevelopers(context.Background())
	require.NoError(t, err)
	require.NoError(t, f.Close())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(before, after), "opening and reading a state file leaves it byte for byte")
}

func TestOpenFileInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := OpenFile(path)
	require.NoError(t, err)
	defer f.Close()

	start := time.Now()
	_, err = OpenFile(path, WithLockTimeout(50*time.Millisecond))
	require.ErrorIs(t, err, ErrInUse)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "state file is in use")
	assert.Less(t, time.Since(start), 5*time.Second, "it does not hang")

	// A brand-new file held by another opener is in use too, not corrupt.
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	g, err := OpenFile(fresh)
	require.NoError(t, err)
	defer g.Close()
	_, err = OpenFile(fresh, WithLockTimeout(50*time.Millisecond))
	require.ErrorIs(t, err, ErrInUse)
}

func TestOpenFileEmptyFileIsNew(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	f, err := OpenFile(path)
	require.NoError(t, err)
	require.NoError(t, f.PutProduct(context.Background(), apigeeapi.APIProduct{Name: "p"}))
	require.NoError(t, f.Close())
}

func TestOpenFileBadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := OpenFile(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a directory")
	_, err = OpenFile(filepath.Join(dir, "missing", "state.db"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
	_, err = OpenFile(filepath.Join(dir, "x.db"), WithLockTimeout(-time.Second))
	require.Error(t, err)
}

func TestFileSweepsExpiredCounters(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(epoch)
	f, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), WithClock(c))
	require.NoError(t, err)
	defer f.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		_, err := f.Take(ctx, TakeRequest{Key: k, Weight: 1, Limit: 5, Count: true, Expires: epoch.Add(time.Minute)})
		require.NoError(t, err)
	}
	_, err = f.Take(ctx, TakeRequest{Key: "keep", Weight: 1, Limit: 5, Count: true})
	require.NoError(t, err)
	assert.Equal(t, 4, f.counterCount())
	c.Advance(2 * sweepEvery)
	_, err = f.Take(ctx, TakeRequest{Key: "keep", Weight: 1, Limit: 5, Count: true})
	require.NoError(t, err)
	assert.Equal(t, 1, f.counterCount(), "expired counters are dropped by the next sweep")
}
