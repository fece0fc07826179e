package crds_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/manifests/crds"
)

// The API server's checks of a custom resource on create, offline: unknown
// fields (what server-side apply with fieldValidation=Strict refuses, and
// what pruning would otherwise drop silently), defaulting, the OpenAPI v3
// schema, list types, and the CEL rules (x-kubernetes-validations).

// crdVersion is one served version of a CRD, ready to validate objects.
type crdVersion struct {
	crd        string
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

// schemas are the CRDs by the group/version/kind they serve.
type schemas map[schema.GroupVersionKind]*crdVersion

// loadCRD decodes one CRD file strictly and converts it to the internal
// version the API server validates with.
func loadCRD(data []byte) (*apiextensions.CustomResourceDefinition, error) {
	var v1crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &v1crd); err != nil {
		return nil, err
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1crd)
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1crd, &crd, nil); err != nil {
		return nil, err
	}
	return &crd, nil
}

// loadSchemas reads every embedded CRD.
func loadSchemas() (schemas, map[string]*apiextensions.CustomResourceDefinition, error) {
	out := schemas{}
	all := map[string]*apiextensions.CustomResourceDefinition{}
	entries, err := fs.ReadDir(crds.FS(), ".")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(crds.FS(), e.Name())
		if err != nil {
			return nil, nil, err
		}
		crd, err := loadCRD(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		all[e.Name()] = crd
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			val, err := apiextensions.GetSchemaForVersion(crd, v.Name)
			if err != nil || val == nil || val.OpenAPIV3Schema == nil {
				return nil, nil, fmt.Errorf("%s: version %s has no schema (%v)", e.Name(), v.Name, err)
			}
			st, err := structuralschema.NewStructural(val.OpenAPIV3Schema)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: version %s: %w", e.Name(), v.Name, err)
			}
			sv, _, err := validation.NewSchemaValidator(val.OpenAPIV3Schema)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: version %s: %w", e.Name(), v.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			out[gvk] = &crdVersion{
				crd:        crd.Name,
				structural: st,
				schema:     sv,
				cel:        cel.NewValidator(st, true, celconfig.PerCallLimit),
			}
		}
	}
	return out, all, nil
}

// validate checks one object as the API server would on create. obj is
// changed: unknown fields are pruned and defaults filled in.
func (cv *crdVersion) validate(obj map[string]any) field.ErrorList {
	var errs field.ErrorList
	unknown := pruning.PruneWithOptions(obj, cv.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	sort.Strings(unknown)
	for _, u := range unknown {
		errs = append(errs, field.Invalid(field.NewPath(u), "", "unknown field"))
	}
	defaulting.Default(obj, cv.structural)
	errs = append(errs, validation.ValidateCustomResource(nil, obj, cv.schema)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, cv.structural, obj)...)
	celErrs, _ := cv.cel.Validate(context.Background(), nil, cv.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

// document is one YAML document of a manifest file.
type document struct {
	file string
	doc  int
	json []byte
	obj  map[string]any
	gvk  schema.GroupVersionKind
	name string
}

func (d document) String() string {
	return fmt.Sprintf("%s document %d (%s %s)", d.file, d.doc+1, d.gvk.Kind, d.name)
}

// readDocuments splits every .yaml file under root of fsys into documents.
func readDocuments(fsys fs.FS, prefix string) ([]document, error) {
	var out []document
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		docs, err := splitYAML(prefix+p, data)
		out = append(out, docs...)
		return err
	})
	return out, err
}

func splitYAML(file string, data []byte) ([]document, error) {
	var out []document
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", file, err)
		}
		j, err := yaml.YAMLToJSONStrict(chunk)
		if err != nil {
			return out, fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			i--
			continue
		}
		d := document{file: file, doc: i, json: j}
		// Integers decode as int64, as the API server decodes them.
		if err := utiljson.Unmarshal(j, &d.obj); err != nil {
			return out, fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		apiVersion, _ := d.obj["apiVersion"].(string)
		kind, _ := d.obj["kind"].(string)
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return out, fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		d.gvk = gv.WithKind(kind)
		if md, ok := d.obj["metadata"].(map[string]any); ok {
			d.name, _ = md["name"].(string)
		}
		out = append(out, d)
	}
}

// builtins decodes Kubernetes' own kinds strictly: unknown and duplicate
// fields are errors.
var builtins = serializer.NewCodecFactory(clientgoscheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// validateDocument validates d against its CRD, or, for a built-in kind,
// decodes it strictly. A kind that is neither is an error: nothing could
// apply it.
func validateDocument(s schemas, d document) error {
	if cv, ok := s[d.gvk]; ok {
		if errs := cv.validate(d.obj); len(errs) > 0 {
			return fmt.Errorf("%s: %w", d, errs.ToAggregate())
		}
		return nil
	}
	if !clientgoscheme.Scheme.Recognizes(d.gvk) {
		return fmt.Errorf("%s: no CRD here serves %s and it is not a built-in kind", d, d.gvk)
	}
	var into runtime.Object
	if _, _, err := builtins.Decode(d.json, nil, into); err != nil {
		return fmt.Errorf("%s: %s", d, strings.TrimSpace(err.Error()))
	}
	return nil
}
