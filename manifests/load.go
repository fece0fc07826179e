package manifests

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed default/*.yaml default/policies
var defaultFS embed.FS

// Default returns the embedded default topology: a Gateway, an HTTPRoute to
// an InferencePool of three fake model servers, their endpoint picker and an
// InferenceObjective. The files sit at the root of the returned FS.
func Default() fs.FS {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		panic(err) // "default" is a valid path: cannot happen
	}
	return sub
}

// LoadDefault loads and compiles the embedded default topology.
func LoadDefault() (*Snapshot, error) {
	objs, policies, err := Load(Default(), ".")
	if err != nil {
		return nil, err
	}
	return Compile(objs, policies)
}

// Load reads every file under dir in fsys, recursively, in sorted path order:
// *.yaml and *.yml files are decoded (see Decode), *.xml files are returned as
// policy files, other files are ignored, and so are files and directories
// whose names start with a dot. File names in the objects, the policy map and
// errors are relative to dir. Every decoding problem of every file is
// reported, joined with errors.Join, beside the objects that did decode.
func Load(fsys fs.FS, dir string) ([]Object, map[string][]byte, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read manifests: %w", err)
	}
	slices.Sort(files)

	var objs []Object
	var errs []error
	policies := map[string][]byte{}
	for _, p := range files {
		rel := relative(dir, p)
		switch strings.ToLower(path.Ext(p)) {
		case ".yaml", ".yml":
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("read manifests: %w", err))
				continue
			}
			o, err := Decode(rel, data)
			objs = append(objs, o...)
			if err != nil {
				errs = append(errs, err)
			}
		case ".xml":
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("read manifests: %w", err))
				continue
			}
			policies[rel] = data
		}
	}
	return objs, policies, errors.Join(errs...)
}

// relative is p relative to dir, both slash-separated fs.FS paths.
func relative(dir, p string) string {
	if dir == "." {
		return p
	}
	return strings.TrimPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
