// Package images builds gatecheck's container image without Docker: it
// cross-compiles the static gatecheck binary from the module's source (cgo
// off, -trimpath) and packs it, alone, into an OCI image built from scratch
// with github.com/google/go-containerregistry. No base image is pulled and no
// container engine is needed.
//
// Each platform's image is written as a docker-archive tarball (what
// `docker load` and `kind load image-archive` accept); when several platforms
// are built, an OCI image layout holding a multi-platform index is written
// beside them (push it with `crane push --index` or any OCI tool).
//
// The image runs /gatecheck as the unprivileged user 65532 (the "nonroot"
// user of distroless images); its entrypoint is /gatecheck, so a Deployment
// gives the subcommand as its args or repeats /gatecheck in its command.
package images
