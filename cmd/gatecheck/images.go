package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/images"
)

func newImagesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build gatecheck's container image without Docker",
	}
	cmd.AddCommand(newImagesBuildCmd(g))
	return cmd
}

func newImagesBuildCmd(g *globals) *cobra.Command {
	var platforms, out, tag string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Compile gatecheck and pack it into an OCI image built from scratch",
		Long: `images build cross-compiles the static gatecheck binary from this checkout
(CGO_ENABLED=0, -trimpath) and packs it alone into an image built from scratch
with go-containerregistry: entrypoint /gatecheck, user 65532. No Docker build
and no base image. Each platform's image is written as a docker-archive tarball
(gatecheck-linux-ARCH.tar) that ` + "`docker load`" + ` and ` + "`kind load image-archive`" + `
accept; with several platforms, an OCI layout holding a multi-platform index is
written beside them (oci/). Run it inside a checkout of the gatecheck module.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := images.ParsePlatforms(platforms)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			res, err := images.Build(cmd.Context(), images.Options{Platforms: ps, OutDir: out, Tag: tag, Log: g.stderr})
			if err != nil {
				return err
			}
			for _, a := range res.Archives {
				fmt.Fprintf(g.stdout, "%s\t%s\t%s\n", a.Platform, a.Path, a.ImageID)
			}
			if res.Layout != "" {
				fmt.Fprintf(g.stdout, "index\t%s\t%s\n", res.Layout, res.IndexDigest)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&platforms, "platform", "", "platforms to build, comma-separated os/arch[/variant], for example linux/amd64,linux/arm64 (default: linux on this machine's architecture)")
	cmd.Flags().StringVar(&out, "out", "", "directory for the archives (default: _out/images in the checkout)")
	cmd.Flags().StringVar(&tag, "tag", images.DefaultTag, "the image's name in the archives")
	return cmd
}
