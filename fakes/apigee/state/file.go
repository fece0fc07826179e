package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// FormatVersion is the value of the format key in a state file's meta
// bucket. OpenFile refuses files with another value rather than guess.
const FormatVersion = "gatecheck-state/1"

// ErrCorrupt is returned (wrapped) by OpenFile when the file is not a
// gatecheck state file: not a bbolt database, a bbolt database of something
// else, an unknown format version, or damaged. The file is left as it was.
var ErrCorrupt = errors.New("not a gatecheck state file or corrupt")

// ErrInUse is returned (wrapped) by OpenFile when another process (or another
// open File in this one) holds the state file.
var ErrInUse = errors.New("state file is in use")

// The file's layout: one bucket per kind, JSON values.
var (
	bucketMeta       = []byte("meta")       // "format" → FormatVersion
	bucketDevelopers = []byte("developers") // lower-cased email → apigeeapi.Developer
	bucketApps       = []byte("apps")       // lower-cased email NUL app name → apigeeapi.DeveloperApp
	bucketKeys       = []byte("keys")       // consumer key → appRef
	bucketProducts   = []byte("products")   // name → apigeeapi.APIProduct
	bucketTokens     = []byte("tokens")     // access token → tokenRecord
	bucketCounters   = []byte("counters")   // counter key → counter
	keyFormat        = []byte("format")

	dataBuckets = [][]byte{bucketDevelopers, bucketApps, bucketKeys, bucketProducts, bucketTokens, bucketCounters}
)

// File is the Store kept in a bbolt file, for the sandbox: what is
// provisioned, the tokens issued and the counters survive a restart. Every
// write is one bbolt transaction, synced to disk before it returns.
type File struct {
	db    *bolt.DB
	path  string
	clock clock.Clock

	// nextSweep is read and written only inside write transactions, which
	// bbolt runs one at a time.
	nextSweep time.Time
}

var _ Store = (*File)(nil)

// OpenFile opens the state file at path, creating it when it does not exist
// or is empty. An existing file is first checked read-only — bbolt's meta
// pages and page structure, the format version, and every stored value
// (filecheck.go, checkValues) — so a file that is not
// a gatecheck state file, or is corrupt, is refused with ErrCorrupt and never
// written to. When another process holds the file, OpenFile waits up to the
// lock timeout (WithLockTimeout) and then fails with ErrInUse.
func OpenFile(path string, opts ...Option) (*File, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	// bbolt trusts the pages it reads: a damaged file can make it panic, or
	// read past the end of its memory map. Opening runs on its own goroutine
	// with panic-on-fault set, so both come back as ErrCorrupt instead of
	// crashing the process. Once open, the file has been read end to end.
	type result struct {
		db  *bolt.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		var files []*os.File
		defer func() {
			if r := recover(); r != nil {
				for _, f := range files {
					_ = f.Close() // releases the lock; the memory map, if any, leaks
				}
				done <- result{err: fmt.Errorf("state file %s is %w: reading it failed: %v", path, ErrCorrupt, r)}
			}
		}()
		debug.SetPanicOnFault(true)
		openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if f != nil {
				files = append(files, f)
			}
			return f, err
		}
		db, err := openDB(path, o.lockTimeout, openFile)
		done <- result{db, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return &File{db: r.db, path: path, clock: o.clock}, nil
}

// openDB checks an existing file read-only, then opens it read-write.
func openDB(path string, timeout time.Duration, openFile func(string, int, os.FileMode) (*os.File, error)) (*bolt.DB, error) {
	info, err := os.Stat(path)
	existing := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new file.
	case err != nil:
		return nil, fmt.Errorf("state file %s: %w", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("state file %s is a directory", path)
	case info.Size() > 0:
		if err := checkFile(path, timeout, openFile); err != nil {
			return nil, err
		}
		existing = true
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, OpenFile: openFile})
	if err != nil {
		return nil, openError(path, timeout, err)
	}
	// An existing file is only read here: a write transaction would rewrite
	// its meta page for nothing.
	setup := db.Update
	if existing {
		setup = db.View
	}
	if err := setup(initFile); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return db, nil
}

// initFile gives a new file its buckets and format; an existing file must
// already have them (checkFile has looked, and initFile runs read-only).
func initFile(tx *bolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil || !tx.Writable() {
		return checkLayout(tx)
	}
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return fmt.Errorf("bbolt database without a meta bucket: %w", ErrCorrupt)
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keyFormat, []byte(FormatVersion)); err != nil {
		return err
	}
	for _, b := range dataBuckets {
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	return nil
}

// checkLayout checks the format version and that every bucket is there.
func checkLayout(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("no meta bucket: %w", ErrCorrupt)
	}
	if v := meta.Get(keyFormat); string(v) != FormatVersion {
		return fmt.Errorf("format %q, this gatecheck reads %q: %w", v, FormatVersion, ErrCorrupt)
	}
	for _, b := range dataBuckets {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("no %s bucket: %w", b, ErrCorrupt)
		}
	}
	return nil
}

// checkFile opens an existing file read-only and reads all of it: the page
// structure (filecheck.go), the layout and every value.
func checkFile(path string, timeout time.Duration, openFile func(string, int, os.FileMode) (*os.File, error)) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout, OpenFile: openFile})
	if err != nil {
		return openError(path, timeout, err)
	}
	defer db.Close()
	// bbolt's read-only open has read only the meta pages. With its shared
	// lock held (no writer can change the file), check the page structure
	// before bbolt walks it.
	if err := checkStructure(path); err != nil {
		return fmt.Errorf("state file %s is %w: %v", path, ErrCorrupt, err)
	}
	if err := db.View(checkValues); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// checkValues checks the layout and decodes every stored value.
func checkValues(tx *bolt.Tx) error {
	if err := checkLayout(tx); err != nil {
		return err
	}
	for _, name := range dataBuckets {
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("%s/%q is a bucket, want a value: %w", name, k, ErrCorrupt)
			}
			if err := checkValue(name, k, v); err != nil {
				return fmt.Errorf("%s/%q: %w", name, k, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkValue decodes one stored value of a data bucket.
func checkValue(bucket, k, v []byte) error {
	var err error
	switch string(bucket) {
	case string(bucketDevelopers):
		_, err = decodeValue[apigeeapi.Developer](v)
	case string(bucketApps):
		if !bytes.ContainsRune(k, 0) {
			return fmt.Errorf("app key without a NUL separator: %w", ErrCorrupt)
		}
		_, err = decodeValue[apigeeapi.DeveloperApp](v)
	case string(bucketKeys):
		_, err = decodeValue[appRef](v)
	case string(bucketProducts):
		_, err = decodeValue[apigeeapi.APIProduct](v)
	case string(bucketTokens):
		_, err = decodeValue[tokenRecord](v)
	case string(bucketCounters):
		_, err = decodeValue[counter](v)
	}
	return err
}

// openError says why bbolt.Open failed in words a user can act on.
func openError(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s is held by another gatecheck process (waited %v for its lock)", ErrInUse, path, timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("state file %s is %w: %v", path, ErrCorrupt, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state file %s: %w", path, err)
	default:
		// Anything else bbolt says about an existing file's contents (page
		// size, mapping) means it is not one of ours.
		return fmt.Errorf("state file %s is %w: %v", path, ErrCorrupt, err)
	}
}

// decodeValue decodes one stored JSON value.
func decodeValue[T any](v []byte) (T, error) {
	var out T
	if err := json.Unmarshal(v, &out); err != nil {
		return out, fmt.Errorf("decode %T: %v: %w", out, err, ErrCorrupt)
	}
	return out, nil
}

// tokenRecord is Token as stored.
type tokenRecord struct {
	AccessToken string    `json:"accessToken"`
	ConsumerKey string    `json:"consumerKey"`
	Scopes      []string  `json:"scopes,omitempty"`
	IssuedAt    time.Time `json:"issuedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Close closes the file; the File is unusable afterwards.
func (f *File) Close() error {
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", f.path, err)
	}
	return nil
}

// view and update run fn in a transaction after checking ctx.
func (f *File) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.db.View(fn)
}

func (f *File) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.db.Update(fn)
}

func put(b *bolt.Bucket, k string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(k), data)
}

// get decodes the value at k; ok is false when there is none.
func get[T any](b *bolt.Bucket, k string) (T, bool, error) {
	v := b.Get([]byte(k))
	if v == nil {
		var zero T
		return zero, false, nil
	}
	out, err := decodeValue[T](v)
	return out, err == nil, err
}

func appKey(dk, name string) string { return dk + "\x00" + name }

// PutDeveloper creates or replaces the developer with d's email.
func (f *File) PutDeveloper(ctx context.Context, d apigeeapi.Developer) error {
	if err := checkEmail("put developer", d.Email); err != nil {
		return err
	}
	return f.update(ctx, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketDevelopers), devKey(d.Email), d)
	})
}

// GetDeveloper returns the developer with this email.
func (f *File) GetDeveloper(ctx context.Context, email string) (apigeeapi.Developer, error) {
	var d apigeeapi.Developer
	err := f.view(ctx, func(tx *bolt.Tx) error {
		var ok bool
		var err error
		d, ok, err = get[apigeeapi.Developer](tx.Bucket(bucketDevelopers), devKey(email))
		if err == nil && !ok {
			err = fmt.Errorf("developer %q: %w", email, ErrNotFound)
		}
		return err
	})
	return d, err
}

// ListDevelopers returns every developer, ordered by email.
func (f *File) ListDevelopers(ctx context.Context) ([]apigeeapi.Developer, error) {
	out := []apigeeapi.Developer{}
	err := f.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevelopers).ForEach(func(_, v []byte) error {
			d, err := decodeValue[apigeeapi.Developer](v)
			out = append(out, d)
			return err
		})
	})
	return out, err
}

// DeleteDeveloper deletes the developer, their apps, the apps' keys and the
// tokens issued to those keys.
func (f *File) DeleteDeveloper(ctx context.Context, email string) error {
	return f.update(ctx, func(tx *bolt.Tx) error {
		dk := devKey(email)
		devs := tx.Bucket(bucketDevelopers)
		if devs.Get([]byte(dk)) == nil {
			return fmt.Errorf("developer %q: %w", email, ErrNotFound)
		}
		apps := tx.Bucket(bucketApps)
		prefix := []byte(appKey(dk, ""))
		var names [][]byte
		c := apps.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			app, err := decodeValue[apigeeapi.DeveloperApp](v)
			if err != nil {
				return err
			}
			if err := dropKeys(tx, droppedKeys(app, nil)); err != nil {
				return err
			}
			names = append(names, bytes.Clone(k))
		}
		for _, k := range names {
			if err := apps.Delete(k); err != nil {
				return err
			}
		}
		return devs.Delete([]byte(dk))
	})
}

// dropKeys forgets consumer keys and the tokens issued to them.
func dropKeys(tx *bolt.Tx, gone map[string]struct{}) error {
	if len(gone) == 0 {
		return nil
	}
	keys := tx.Bucket(bucketKeys)
	for k := range gone {
		if err := keys.Delete([]byte(k)); err != nil {
			return err
		}
	}
	tokens := tx.Bucket(bucketTokens)
	var doomed [][]byte
	err := tokens.ForEach(func(k, v []byte) error {
		t, err := decodeValue[tokenRecord](v)
		if err != nil {
			return err
		}
		if _, ok := gone[t.ConsumerKey]; ok {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := tokens.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PutApp creates or replaces the developer's app of the same name and
// re-indexes its consumer keys.
func (f *File) PutApp(ctx context.Context, email string, app apigeeapi.DeveloperApp) error {
	if err := validateApp(email, app); err != nil {
		return err
	}
	return f.update(ctx, func(tx *bolt.Tx) error {
		dk := devKey(email)
		if tx.Bucket(bucketDevelopers).Get([]byte(dk)) == nil {
			return fmt.Errorf("put app %q: developer %q: %w", app.Name, email, ErrNotFound)
		}
		keys := tx.Bucket(bucketKeys)
		ref := appRef{Developer: dk, App: app.Name}
		for _, c := range app.Credentials {
			owner, ok, err := get[appRef](keys, c.ConsumerKey)
			if err != nil {
				return err
			}
			if ok && owner != ref {
				return fmt.Errorf("put app %q: consumer key %s belongs to app %q of %q: %w",
					app.Name, redactKey(c.ConsumerKey), owner.App, owner.Developer, ErrExists)
			}
		}
		apps := tx.Bucket(bucketApps)
		old, ok, err := get[apigeeapi.DeveloperApp](apps, appKey(dk, app.Name))
		if err != nil {
			return err
		}
		if ok {
			if err := dropKeys(tx, droppedKeys(old, &app)); err != nil {
				return err
			}
		}
		for _, c := range app.Credentials {
			if err := put(keys, c.ConsumerKey, ref); err != nil {
				return err
			}
		}
		return put(apps, appKey(dk, app.Name), app)
	})
}

// GetApp returns the developer's app with this name.
func (f *File) GetApp(ctx context.Context, email, name string) (apigeeapi.DeveloperApp, error) {
	var app apigeeapi.DeveloperApp
	err := f.view(ctx, func(tx *bolt.Tx) error {
		dk := devKey(email)
		if tx.Bucket(bucketDevelopers).Get([]byte(dk)) == nil {
			return fmt.Errorf("developer %q: %w", email, ErrNotFound)
		}
		var ok bool
		var err error
		app, ok, err = get[apigeeapi.DeveloperApp](tx.Bucket(bucketApps), appKey(dk, name))
		if err == nil && !ok {
			err = fmt.Errorf("app %q of developer %q: %w", name, email, ErrNotFound)
		}
		return err
	})
	return app, err
}

// ListApps returns the developer's apps, ordered by name.
func (f *File) ListApps(ctx context.Context, email string) ([]apigeeapi.DeveloperApp, error) {
	out := []apigeeapi.DeveloperApp{}
	err := f.view(ctx, func(tx *bolt.Tx) error {
		dk := devKey(email)
		if tx.Bucket(bucketDevelopers).Get([]byte(dk)) == nil {
			return fmt.Errorf("developer %q: %w", email, ErrNotFound)
		}
		prefix := []byte(appKey(dk, ""))
		c := tx.Bucket(bucketApps).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			app, err := decodeValue[apigeeapi.DeveloperApp](v)
			if err != nil {
				return err
			}
			out = append(out, app)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteApp deletes the developer's app, its keys and their tokens.
func (f *File) DeleteApp(ctx context.Context, email, name string) error {
	return f.update(ctx, func(tx *bolt.Tx) error {
		apps := tx.Bucket(bucketApps)
		k := appKey(devKey(email), name)
		app, ok, err := get[apigeeapi.DeveloperApp](apps, k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("app %q of developer %q: %w", name, email, ErrNotFound)
		}
		if err := dropKeys(tx, droppedKeys(app, nil)); err != nil {
			return err
		}
		return apps.Delete([]byte(k))
	})
}

// PutProduct creates or replaces the product with p's name.
func (f *File) PutProduct(ctx context.Context, p apigeeapi.APIProduct) error {
	if p.Name == "" {
		return fmt.Errorf("put product: empty name: %w", ErrInvalid)
	}
	return f.update(ctx, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketProducts), p.Name, p)
	})
}

// GetProduct returns the product with this name.
func (f *File) GetProduct(ctx context.Context, name string) (apigeeapi.APIProduct, error) {
	var p apigeeapi.APIProduct
	err := f.view(ctx, func(tx *bolt.Tx) error {
		var ok bool
		var err error
		p, ok, err = get[apigeeapi.APIProduct](tx.Bucket(bucketProducts), name)
		if err == nil && !ok {
			err = fmt.Errorf("api product %q: %w", name, ErrNotFound)
		}
		return err
	})
	return p, err
}

// ListProducts returns every product, ordered by name.
func (f *File) ListProducts(ctx context.Context) ([]apigeeapi.APIProduct, error) {
	out := []apigeeapi.APIProduct{}
	err := f.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProducts).ForEach(func(_, v []byte) error {
			p, err := decodeValue[apigeeapi.APIProduct](v)
			out = append(out, p)
			return err
		})
	})
	return out, err
}

// DeleteProduct deletes the product.
func (f *File) DeleteProduct(ctx context.Context, name string) error {
	return f.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProducts)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("api product %q: %w", name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// Consumer finds the credential with this consumer key and everything around
// it, in one read transaction.
func (f *File) Consumer(ctx context.Context, consumerKey string) (Consumer, error) {
	var c Consumer
	err := f.view(ctx, func(tx *bolt.Tx) error {
		ref, ok, err := get[appRef](tx.Bucket(bucketKeys), consumerKey)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("consumer key %s: %w", redactKey(consumerKey), ErrNotFound)
		}
		app, ok, err := get[apigeeapi.DeveloperApp](tx.Bucket(bucketApps), appKey(ref.Developer, ref.App))
		if err != nil {
			return err
		}
		cred, found := findCredential(app, consumerKey)
		if !ok || !found {
			return fmt.Errorf("consumer key %s: index names app %q without the key: %w",
				redactKey(consumerKey), ref.App, ErrNotFound)
		}
		dev, _, err := get[apigeeapi.Developer](tx.Bucket(bucketDevelopers), ref.Developer)
		if err != nil {
			return err
		}
		c = Consumer{Developer: dev, App: app, Credential: cred, Products: []apigeeapi.APIProduct{}}
		products := tx.Bucket(bucketProducts)
		for _, pr := range cred.APIProducts {
			p, ok, err := get[apigeeapi.APIProduct](products, pr.APIProduct)
			if err != nil {
				return err
			}
			if ok {
				c.Products = append(c.Products, p)
			}
		}
		return nil
	})
	return c, err
}

// PutToken stores an issued access token.
func (f *File) PutToken(ctx context.Context, t Token) error {
	if t.AccessToken == "" {
		return fmt.Errorf("put token: empty access token: %w", ErrInvalid)
	}
	return f.update(ctx, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketTokens), t.AccessToken, tokenRecord(t))
	})
}

// GetToken returns the token, expired or not.
func (f *File) GetToken(ctx context.Context, accessToken string) (Token, error) {
	var t Token
	err := f.view(ctx, func(tx *bolt.Tx) error {
		r, ok, err := get[tokenRecord](tx.Bucket(bucketTokens), accessToken)
		if err == nil && !ok {
			err = fmt.Errorf("access token %s: %w", redactKey(accessToken), ErrNotFound)
		}
		t = Token(r)
		return err
	})
	return t, err
}

// Take checks and updates one counter in one write transaction.
func (f *File) Take(ctx context.Context, req TakeRequest) (TakeResult, error) {
	if err := validateTake(req); err != nil {
		return TakeResult{}, err
	}
	var res TakeResult
	err := f.update(ctx, func(tx *bolt.Tx) error {
		now := f.clock.Now()
		b := tx.Bucket(bucketCounters)
		if !now.Before(f.nextSweep) {
			if err := sweepCounters(b, now); err != nil {
				return err
			}
			f.nextSweep = now.Add(sweepEvery)
		}
		c, ok, err := get[*counter](b, req.Key)
		if err != nil {
			return err
		}
		if !ok || c == nil || c.expired(now) {
			c = newCounter(req)
		}
		res = c.take(req)
		return put(b, req.Key, c)
	})
	if err != nil {
		return TakeResult{}, err
	}
	return res, nil
}

// sweepCounters deletes the counters expired at now.
func sweepCounters(b *bolt.Bucket, now time.Time) error {
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		c, err := decodeValue[counter](v)
		if err != nil {
			return err
		}
		if c.expired(now) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// ResetCounters forgets every counter whose key starts with prefix.
func (f *File) ResetCounters(ctx context.Context, prefix string) error {
	return f.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		var doomed [][]byte
		c := b.Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			doomed = append(doomed, bytes.Clone(k))
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// counterCount is how many counters the file holds; for tests of expiry.
func (f *File) counterCount() int {
	n := 0
	_ = f.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketCounters).Stats().KeyN
		return nil
	})
	return n
}
