package crds

import (
	"embed"
	"io/fs"
)

// GatewayAPIVersion is the Gateway API release the copied CRDs come from.
const GatewayAPIVersion = "v1.6.3"

// GatewayAPIFiles are the file names of the copied Gateway API CRDs, as in
// the module's config/crd/standard directory.
var GatewayAPIFiles = []string{
	"gateway.networking.k8s.io_gatewayclasses.yaml",
	"gateway.networking.k8s.io_gateways.yaml",
	"gateway.networking.k8s.io_httproutes.yaml",
	"gateway.networking.k8s.io_referencegrants.yaml",
}

//go:embed *.yaml
var files embed.FS

// FS holds every CRD, one per .yaml file at its root. Apply all of them
// before any object of their kinds.
func FS() fs.FS { return files }
