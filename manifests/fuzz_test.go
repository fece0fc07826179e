package manifests

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// fuzzSeeds are the default topology's files, one by one and all together,
// and a few broken variants.
func fuzzSeeds(f *testing.F) {
	files := defaultFiles(f)
	var all []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f.Add([]byte(files[name]))
		all = append(all, files[name])
	}
	f.Add([]byte(strings.Join(all, "---\n")))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}]}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n--- !!map\n...\n"))
}

func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Decode("fuzz.yaml", data)
		for _, e := range unjoin(err) {
			if e == nil {
				continue
			}
			var fe *FieldError
			if !errors.As(e, &fe) {
				t.Fatalf("error %T is not a *FieldError: %v", e, e)
			}
		}
		for _, o := range objs {
			if o.Value == nil || o.Name == "" || o.Kind == "" {
				t.Fatalf("incomplete object %+v", o)
			}
		}
	})
}

func FuzzCompile(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := Decode("fuzz.yaml", data)
		s, err := Compile(objs, nil)
		if (s == nil) == (err == nil) {
			t.Fatalf("Compile returned snapshot %v and error %v", s != nil, err)
		}
	})
}
