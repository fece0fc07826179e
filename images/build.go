package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Defaults of Options.
const (
	// DefaultTag is the image's name: what the Deployments of the kind
	// overlay and of the default topology run.
	DefaultTag = "gatecheck:dev"
	// DefaultOutDir is where archives go, relative to the module root.
	DefaultOutDir = "_out/images"
	// ModulePath is the module Build compiles.
	ModulePath = "github.com/gatecheck/gatecheck"
	// MainPackage is the gatecheck command, relative to the module root.
	MainPackage = "./cmd/gatecheck"
	// BinaryPath is where the binary sits in the image, and the entrypoint.
	BinaryPath = "/gatecheck"
	// User is the numeric user the image runs as (distroless "nonroot").
	User = "65532"
)

// Platform is an OS, architecture and optional variant, as
// linux/amd64 or linux/arm/v7.
type Platform struct {
	OS, Arch, Variant string
}

// String renders the platform as os/arch[/variant].
func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is linux on the host's architecture: what a kind node on this
// machine runs (Docker Desktop on an arm64 Mac runs arm64 Linux).
func HostPlatform() Platform { return Platform{OS: "linux", Arch: runtime.GOARCH} }

// ParsePlatforms parses a comma-separated list of os/arch[/variant]. Only
// linux is accepted: the image has no other userland to run on. An empty
// string is the host platform.
func ParsePlatforms(s string) ([]Platform, error) {
	if strings.TrimSpace(s) == "" {
		return []Platform{HostPlatform()}, nil
	}
	var out []Platform
	seen := map[Platform]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		f := strings.Split(part, "/")
		if len(f) < 2 || len(f) > 3 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("platform %q: want os/arch or os/arch/variant, for example linux/amd64", part)
		}
		p := Platform{OS: f[0], Arch: f[1]}
		if len(f) == 3 {
			p.Variant = f[2]
		}
		if p.OS != "linux" {
			return nil, fmt.Errorf("platform %q: only linux images can be built (the image has nothing but the binary)", part)
		}
		if _, ok := goarch[p.Arch]; !ok {
			return nil, fmt.Errorf("platform %q: unknown architecture %q", part, p.Arch)
		}
		if p.Variant != "" && p.Arch != "arm" && p.Arch != "arm64" {
			return nil, fmt.Errorf("platform %q: a variant is only meaningful for arm and arm64", part)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// goarch lists the architectures Go's linux port builds for.
var goarch = map[string]bool{
	"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true,
	"s390x": true, "riscv64": true, "loong64": true, "mips64le": true,
}

// Options configure Build. The zero value builds the host platform from the
// module containing the working directory.
type Options struct {
	// ModuleDir is any directory inside a checkout of the gatecheck module;
	// empty means the working directory.
	ModuleDir string
	// Platforms to build; empty means the host platform.
	Platforms []Platform
	// OutDir receives the archives; empty means DefaultOutDir under the
	// module root. A relative path is relative to the working directory.
	OutDir string
	// Tag names the image in every archive; empty means DefaultTag.
	Tag string
	// Go is the go command; empty means "go" from PATH.
	Go string
	// Log receives the go command's output and a line per archive; nil
	// discards it.
	Log io.Writer
}

// Archive is one platform's image, written as a docker-archive tarball.
type Archive struct {
	Platform Platform
	// Path of the tarball.
	Path string
	// ImageID is the digest of the image's config: the IMAGE ID Docker and
	// containerd show once the archive is loaded. (The manifest digest is not
	// kept by a docker-archive, which stores no manifest of its own.)
	ImageID v1.Hash
}

// Result is what Build wrote.
type Result struct {
	// Tag is the image name in every archive.
	Tag string
	// Archives, one per platform, in the order asked for.
	Archives []Archive
	// Layout is the OCI image layout holding the multi-platform index, or
	// "" when one platform was built.
	Layout string
	// IndexDigest is the index's digest when Layout is set.
	IndexDigest v1.Hash
}

// ArchiveFor returns the archive of platform p.
func (r *Result) ArchiveFor(p Platform) (Archive, bool) {
	for _, a := range r.Archives {
		if a.Platform == p {
			return a, true
		}
	}
	return Archive{}, false
}

// Build compiles gatecheck for every platform and writes the images.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := opts.ModuleDir
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		start = wd
	}
	root, err := FindModuleRoot(start)
	if err != nil {
		return nil, err
	}
	platforms := opts.Platforms
	if len(platforms) == 0 {
		platforms = []Platform{HostPlatform()}
	}
	tagName := opts.Tag
	if tagName == "" {
		tagName = DefaultTag
	}
	tag, err := name.NewTag(tagName)
	if err != nil {
		return nil, fmt.Errorf("tag %q: %w", tagName, err)
	}
	out := opts.OutDir
	if out == "" {
		out = filepath.Join(root, DefaultOutDir)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	work, err := os.MkdirTemp("", "gatecheck-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	res := &Result{Tag: tagName}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		bin := filepath.Join(work, p.OS+"_"+p.Arch+p.Variant, "gatecheck")
		if err := compile(ctx, opts.Go, root, bin, p, logw); err != nil {
			return nil, err
		}
		img, err := Image(bin, p)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		path := filepath.Join(out, ArchiveName(p))
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		id, err := img.ConfigName()
		if err != nil {
			return nil, err
		}
		res.Archives = append(res.Archives, Archive{Platform: p, Path: path, ImageID: id})
		fmt.Fprintf(logw, "wrote %s (%s %s, image ID %s)\n", path, tagName, p, id)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
		}})
	}
	if len(platforms) > 1 {
		res.Layout = filepath.Join(out, "oci")
		digest, err := WriteIndex(res.Layout, tagName, adds)
		if err != nil {
			return nil, err
		}
		res.IndexDigest = digest
		fmt.Fprintf(logw, "wrote %s (OCI layout, index %s of %d platforms)\n", res.Layout, digest, len(platforms))
	}
	return res, nil
}

// ArchiveName is the file name of a platform's archive:
// gatecheck-linux-amd64.tar, gatecheck-linux-arm-v7.tar.
func ArchiveName(p Platform) string {
	s := "gatecheck-" + p.OS + "-" + p.Arch
	if p.Variant != "" {
		s += "-" + p.Variant
	}
	return s + ".tar"
}

// WriteIndex writes an OCI image layout at dir holding one multi-platform
// index of the images, annotated with the tag as its ref name, and returns
// the index's digest. An existing layout at dir is
// replaced.
func WriteIndex(dir, tag string, images []mutate.IndexAddendum) (v1.Hash, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, images...)
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return idx.Digest()
}

// FindModuleRoot walks up from dir to the directory whose go.mod declares the
// gatecheck module.
func FindModuleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(data) == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("building the image compiles gatecheck from source, so it must run inside a checkout of %s: no go.mod of that module in %s or above (or pass a prebuilt archive)", ModulePath, abs)
		}
		d = parent
	}
}

// modulePath reads the module line of a go.mod.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// compile cross-compiles the gatecheck command into bin.
func compile(ctx context.Context, goCmd, root, bin string, p Platform, logw io.Writer) error {
	if goCmd == "" {
		goCmd = "go"
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", bin, MainPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	switch {
	case p.Arch == "arm" && p.Variant != "":
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case p.Arch == "arm64" && p.Variant != "":
		cmd.Env = append(cmd.Env, "GOARM64="+strings.TrimPrefix(p.Variant, "v")+".0")
	}
	var stderr bytes.Buffer
	cmd.Stdout = logw
	cmd.Stderr = io.MultiWriter(logw, &stderr)
	fmt.Fprintf(logw, "go build -trimpath %s (CGO_ENABLED=0 GOOS=%s GOARCH=%s)\n", MainPackage, p.OS, p.Arch)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("go build for %s failed:\n%s", p, strings.TrimSpace(stderr.String()))
		}
		return fmt.Errorf("go build for %s: %w", p, err)
	}
	return nil
}

// Image packs the binary at bin into an image for platform p: one layer
// holding /gatecheck (mode 0755) and an empty /tmp (mode 1777), owned by
// root and timestamped at the epoch so the same binary gives the same digest.
func Image(bin string, p Platform) (v1.Image, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	opener := func() (io.ReadCloser, error) {
		f, err := os.Open(bin)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			defer f.Close()
			pw.CloseWithError(writeLayerTar(pw, f, fi.Size()))
		}()
		return pr, nil
	}
	layer, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, &v1.ConfigFile{
		OS:           p.OS,
		Architecture: p.Arch,
		Variant:      p.Variant,
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			User:       User,
			WorkingDir: "/",
			Env:        []string{"PATH=/"},
			Labels: map[string]string{
				"org.opencontainers.image.source": "https://" + ModulePath,
				"org.opencontainers.image.title":  "gatecheck",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{CreatedBy: "gatecheck images build", Comment: "the static gatecheck binary"},
	})
}

// writeLayerTar writes the layer's tar stream: /tmp and /gatecheck.
func writeLayerTar(w io.Writer, bin io.Reader, size int64) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BinaryPath, "/"), Mode: 0o755, Size: size, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, bin); err != nil {
		return err
	}
	return tw.Close()
}
