package manifests

import (
	"embed"
	"io/fs"
)

//go:embed kind
var kindFS embed.FS

// KindOverlay returns the embedded kind overlay (the files in manifests/kind):
// what a kind cluster runs besides the topology — the in-cluster gateway
// controller with its RBAC and NodePort Service, the fake Apigee runtime of
// the default topology's APIMExtensionPolicy, the endpoint picker's RBAC, and
// under ollama/ the Deployment that replaces the fake model servers with
// Ollama. It holds kinds Load does not decode (RBAC, volumes): it is applied
// to a cluster, never compiled.
func KindOverlay() fs.FS {
	sub, err := fs.Sub(kindFS, "kind")
	if err != nil {
		panic(err) // "kind" is a valid path: cannot happen
	}
	return sub
}
