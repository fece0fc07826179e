package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/gatecheck/gatecheck/images"
)

// TestBuildHostImage builds the real image for the host platform (one go
// build), reads the archive back as kind would, and runs the binary taken out
// of its layer.
func TestBuildHostImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary runs only on linux")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	var log bytes.Buffer
	res, err := images.Build(ctx, images.Options{ModuleDir: "..", OutDir: out, Log: &log})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	host := images.HostPlatform()
	a, ok := res.ArchiveFor(host)
	if !ok || len(res.Archives) != 1 || res.Layout != "" {
		t.Fatalf("result %+v: want one archive for %s and no index", res, host)
	}
	if want := filepath.Join(out, "gatecheck-linux-"+runtime.GOARCH+".tar"); a.Path != want {
		t.Errorf("archive at %s, want %s", a.Path, want)
	}

	tag, err := name.NewTag(images.DefaultTag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(a.Path, &tag)
	if err != nil {
		t.Fatalf("read the archive back: %v", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if id != a.ImageID {
		t.Errorf("image ID read back %s, built %s", id, a.ImageID)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/gatecheck" {
		t.Errorf("entrypoint %q, want [/gatecheck]", got)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if cf.Config.User != "65532" {
		t.Errorf("user %q, want 65532", cf.Config.User)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1 (the image is built from scratch)", len(layers))
	}
	if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 {
		t.Errorf("rootfs %v, history %v: want one layer recorded", cf.RootFS.DiffIDs, cf.History)
	}

	bin := filepath.Join(t.TempDir(), "gatecheck")
	files := extract(t, layers[0], bin)
	if files["gatecheck"] != 0o755 || files["tmp/"] != 0o1777 {
		t.Errorf("layer files %v, want gatecheck 0755 and tmp/ 01777", files)
	}
	cmd := exec.CommandContext(ctx, bin, "version")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gatecheck version from the image: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), "gatecheck ") {
		t.Errorf("gatecheck version printed %q, want \"gatecheck ...\"", got)
	}
}

// extract writes /gatecheck of the layer to dst and returns every entry's mode.
func extract(t *testing.T, l v1.Layer, dst string) map[string]int64 {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		if strings.TrimPrefix(h.Name, "/") != "gatecheck" {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		found = true
	}
	if !found {
		t.Fatal("the layer has no /gatecheck")
	}
	return modes
}

// TestIndexOfPlatforms packs two stand-in binaries (no compiling) and checks
// the OCI layout's index names each platform.
func TestIndexOfPlatforms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var adds []mutate.IndexAddendum
	platforms, err := images.ParsePlatforms("linux/amd64,linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range platforms {
		bin := filepath.Join(dir, p.Arch)
		if err := os.WriteFile(bin, []byte("#!/bin/false "+p.Arch), 0o755); err != nil {
			t.Fatal(err)
		}
		img, err := images.Image(bin, p)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}}})
	}
	digest, err := images.WriteIndex(filepath.Join(dir, "oci"), images.DefaultTag, adds)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 || om.Manifests[0].Digest != digest {
		t.Fatalf("layout index %+v: want the one multi-platform index %s", om.Manifests, digest)
	}
	if got := om.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != images.DefaultTag {
		t.Errorf("index ref name %q, want %s", got, images.DefaultTag)
	}
	idx, err := outer.ImageIndex(digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range im.Manifests {
		got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != m.Platform.Architecture {
			t.Errorf("image %s: config says %s, index says %s", m.Digest, cf.Architecture, m.Platform.Architecture)
		}
	}
	if strings.Join(got, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("index platforms %v", got)
	}
}

// TestImageIsReproducible: the same binary packs to the same digest.
func TestImageIsReproducible(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gatecheck")
	if err := os.WriteFile(bin, []byte("stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := images.Platform{OS: "linux", Arch: "amd64"}
	var digests []v1.Hash
	for range 2 {
		img, err := images.Image(bin, p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ: %v", digests)
	}
}

func TestParsePlatforms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: "linux/" + runtime.GOARCH},
		{in: "linux/amd64", want: "linux/amd64"},
		{in: "linux/amd64, linux/arm64,linux/amd64", want: "linux/amd64,linux/arm64"},
		{in: "linux/arm/v7", want: "linux/arm/v7"},
		{in: "darwin/arm64", err: "only linux"},
		{in: "linux", err: "want os/arch"},
		{in: "linux/sparc", err: "unknown architecture"},
		{in: "linux/amd64/v3", err: "variant"},
	} {
		ps, err := images.ParsePlatforms(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePlatforms(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePlatforms(%q): %v", tc.in, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("ParsePlatforms(%q) = %v, want %s", tc.in, got, tc.want)
		}
	}
}

func TestFindModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := images.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "gatecheck")); err != nil {
		t.Errorf("module root %s has no cmd/gatecheck: %v", root, err)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(other, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = images.FindModuleRoot(sub)
	if err == nil || !strings.Contains(err.Error(), "checkout of github.com/gatecheck/gatecheck") {
		t.Errorf("outside a checkout: error %v, want one that asks for a checkout", err)
	}
}
