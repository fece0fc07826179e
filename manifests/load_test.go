package manifests

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	svc := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\n")}
	}
	fsys := fstest.MapFS{
		"root/b.yaml":                    svc("b"),
		"root/a/z.yml":                   svc("az"),
		"root/a.yaml":                    svc("a"),
		"root/README.md":                 {Data: []byte("not YAML: ignored")},
		"root/.hidden/x.yaml":            {Data: []byte("not: [valid")},
		"root/.x.yaml":                   {Data: []byte("not: [valid")},
		"root/policies/verify-key.xml":   {Data: []byte("<VerifyAPIKey/>")},
		"root/policies/nested/quota.XML": {Data: []byte("<Quota/>")},
		"other/c.yaml":                   svc("c"),
	}
	objs, policies, err := Load(fsys, "root")
	require.NoError(t, err)
	var got []string
	for _, o := range objs {
		got = append(got, o.File+": "+o.String())
	}
	// Sorted by full path: "a.yaml" < "a/z.yml" because '.' < '/'.
	assert.Equal(t, []string{"a.yaml: Service default/a", "a/z.yml: Service default/az", "b.yaml: Service default/b"}, got)
	assert.Equal(t, map[string][]byte{
		"policies/verify-key.xml":   []byte("<VerifyAPIKey/>"),
		"policies/nested/quota.XML": []byte("<Quota/>"),
	}, policies)

	s, err := Compile(objs, nil)
	require.NoError(t, err)
	assert.Len(t, s.Services, 3)
	// Policy XML must be filed under an APIMExtensionPolicy's flow.
	_, err = Compile(objs, policies)
	require.EqualError(t, err, "policies/nested/quota.XML: policy XML must be filed as policies/<APIMExtensionPolicy>/request/<name>.xml or .../response/<name>.xml\n"+
		"policies/verify-key.xml: policy XML must be filed as policies/<APIMExtensionPolicy>/request/<name>.xml or .../response/<name>.xml")

	objs, _, err = Load(fsys, ".")
	require.NoError(t, err)
	assert.Equal(t, "other/c.yaml", objs[0].File)
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"a.yaml": {Data: []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")},
		"b.yaml": {Data: []byte("apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\nkey: [\n")},
	}
	objs, _, err := Load(fsys, ".")
	require.Error(t, err)
	assert.Equal(t, "a.yaml: document 1: unsupported kind v1 Secret\n"+
		"b.yaml: document 2: invalid YAML: line 6: did not find expected node content", err.Error())
	require.Len(t, objs, 1, "the objects that decoded are returned")
	assert.Equal(t, "ok", objs[0].Name)

	_, _, err = Load(fsys, "missing")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read manifests: ")
}

func TestCompileObjectsNotFromFiles(t *testing.T) {
	t.Parallel()
	objs, err := Decode("", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"))
	require.NoError(t, err)
	objs[0].Namespace = "" // as a caller building Objects by hand might
	s, err := Compile(objs, nil)
	require.NoError(t, err)
	assert.Equal(t, []ServicePort{{Port: 80, TargetPort: 80}}, s.Services[Ref{"default", "s"}].Ports)

	_, err = Compile([]Object{{Kind: "Thing", Name: "x", Value: 42}}, nil)
	require.Error(t, err)
	assert.Equal(t, "Thing default/x: unsupported object type int", err.Error())
}
