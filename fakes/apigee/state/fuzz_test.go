package state

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// validStateFile returns the bytes of a small, real state file.
func validStateFile(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "seed.db")
	s, err := OpenFile(path)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	for _, err := range []error{
		s.PutDeveloper(ctx, developer("ana@example.com")),
		s.PutProduct(ctx, product("gold")),
		s.PutApp(ctx, "ana@example.com", app("chat", "key-00000000001", "gold")),
		s.PutToken(ctx, token("tok-000000001", "key-00000000001")),
		s.Close(),
	} {
		if err != nil {
			f.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzOpenFile feeds arbitrary bytes to OpenFile as a state file: it must
// never panic, crash or hang, and the file must be left byte for byte as it
// was — refused, or accepted and only read.
func FuzzOpenFile(f *testing.F) {
	valid := validStateFile(f)
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte("not a database"))
	f.Add(bytes.Repeat([]byte{0xff}, 8192))
	// The valid file with damage past its meta pages, where only the
	// checksums of the meta pages do not reach.
	for _, off := range []int{2 * 4096, 3*4096 + 20, 4*4096 + 40, len(valid) - 100} {
		if off < len(valid) {
			d := bytes.Clone(valid)
			for i := off; i < off+16 && i < len(d); i++ {
				d[i] ^= 0x5a
			}
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(path, WithLockTimeout(50*time.Millisecond))
		if err == nil {
			// Accepted: it is a gatecheck state file, and reading it works.
			if _, err := s.ListDevelopers(context.Background()); err != nil {
				t.Errorf("accepted file cannot be listed: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		if len(data) == 0 {
			return // an empty file is a new one, initialised
		}
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if !bytes.Equal(data, after) {
			t.Fatalf("OpenFile (err %v) changed the file", err)
		}
	})
}

// FuzzDecodeValue feeds arbitrary bytes to the decoders of stored values: no
// panic, and whatever decodes encodes back to something that decodes to the
// same value.
func FuzzDecodeValue(f *testing.F) {
	for _, v := range []any{
		developer("ana@example.com"), app("chat", "key-00000000001", "gold"), product("gold"),
		tokenRecord(token("tok-000000001", "key-00000000001")), appRef{Developer: "a", App: "b"},
		counter{Buckets: map[int64]int64{1: 2, -3: 4}, Expires: epoch},
	} {
		data, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"buckets":{"x":1}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip[apigeeapi.Developer](t, data)
		roundTrip[apigeeapi.DeveloperApp](t, data)
		roundTrip[apigeeapi.APIProduct](t, data)
		roundTrip[tokenRecord](t, data)
		roundTrip[appRef](t, data)
		roundTrip[counter](t, data)
		for _, b := range dataBuckets {
			_ = checkValue(b, []byte("k\x00v"), data)
		}
	})
}

func roundTrip[T any](t *testing.T, data []byte) {
	v, err := decodeValue[T](data)
	if err != nil {
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T decoded but does not encode: %v", v, err)
	}
	w, err := decodeValue[T](again)
	if err != nil {
		t.Fatalf("%T: re-encoded %s does not decode: %v", v, again, err)
	}
	if !reflect.DeepEqual(normalize(v), normalize(w)) {
		t.Fatalf("%T changed in a round trip:\n%#v\n%#v", v, v, w)
	}
}

// normalize makes values that JSON treats alike compare equal (empty and
// nil slices, time zones).
func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
