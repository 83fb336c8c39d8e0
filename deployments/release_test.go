package deployments

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestReleaseMakefile checks that make build-linux and make release build
// every binary, and only those.
func TestReleaseMakefile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^BINARIES := ((?:.*\\\n)*.*)$`).FindSubmatch(b)
	require.NotNil(t, m, "Makefile defines BINARIES")
	got := map[string]string{}
	for _, f := range strings.Fields(strings.ReplaceAll(string(m[1]), "\\\n", " ")) {
		name, pkg, ok := strings.Cut(f, "=")
		require.True(t, ok, "BINARIES entry %q is not name=package", f)
		got[name] = pkg
	}
	require.Equal(t, binaries(), got)
	for _, target := range []string{"build-linux:", "release:"} {
		require.Contains(t, string(b), "\n"+target, "Makefile target %s", target)
	}
	require.Contains(t, string(b), "CGO_ENABLED=0 GOOS=linux GOARCH=$$arch")
	require.Contains(t, string(b), "for arch in amd64 arm64")
	require.Contains(t, string(b), "-X main.version=$(VERSION)")
}

// goreleaserConfig is the part of .goreleaser.yaml the test reads.
type goreleaserConfig struct {
	Version int `yaml:"version"`
	Builds  []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Dockers   []goreleaserDocker `yaml:"dockers"`
	Manifests []struct {
		Name   string   `yaml:"name_template"`
		Images []string `yaml:"image_templates"`
	} `yaml:"docker_manifests"`
}

type goreleaserDocker struct {
	ID             string   `yaml:"id"`
	IDs            []string `yaml:"ids"`
	Goarch         string   `yaml:"goarch"`
	Use            string   `yaml:"use"`
	Dockerfile     string   `yaml:"dockerfile"`
	ImageTemplates []string `yaml:"image_templates"`
	BuildFlags     []string `yaml:"build_flag_templates"`
}

// TestReleaseGoreleaser checks .goreleaser.yaml: linux/amd64 and arm64
// static builds of the kiln binary with the version, and its image per
// platform, joined into a manifest tagged with the version.
func TestReleaseGoreleaser(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", ".goreleaser.yaml"))
	require.NoError(t, err)
	var c goreleaserConfig
	require.NoError(t, yaml.Unmarshal(b, &c))
	require.Equal(t, 2, c.Version)

	built := map[string]string{}
	for _, bld := range c.Builds {
		require.Equal(t, bld.ID, bld.Binary)
		built[bld.Binary] = bld.Main
		require.Equal(t, []string{"CGO_ENABLED=0"}, bld.Env, bld.ID)
		require.Equal(t, []string{"linux"}, bld.Goos, bld.ID)
		require.ElementsMatch(t, []string{"amd64", "arm64"}, bld.Goarch, bld.ID)
		require.Contains(t, strings.Join(bld.Ldflags, " "), "-X main.version={{ .Version }}", bld.ID)
	}
	require.Equal(t, binaries(), built)

	// One image, kiln, per platform, joined into one manifest.
	for _, arch := range []string{"amd64", "arm64"} {
		i := slices.IndexFunc(c.Dockers, func(d goreleaserDocker) bool { return d.ID == "kiln-"+arch })
		require.GreaterOrEqual(t, i, 0, "no image kiln for %s", arch)
		d := c.Dockers[i]
		require.Equal(t, arch, d.Goarch)
		require.Equal(t, "buildx", d.Use)
		require.Equal(t, []string{"kiln"}, d.IDs)
		require.Equal(t, "deployments/docker/kiln.Dockerfile", d.Dockerfile)
		require.FileExists(t, filepath.Join("..", d.Dockerfile))
		require.Equal(t, []string{"ghcr.io/kilnhq/kiln:{{ .Version }}-" + arch}, d.ImageTemplates)
		require.Contains(t, d.BuildFlags, "--target=release")
		require.Contains(t, d.BuildFlags, "--platform=linux/"+arch)
		require.Contains(t, d.BuildFlags, "--build-arg=VERSION={{ .Version }}")
	}
	found := false
	for _, m := range c.Manifests {
		if m.Name == "ghcr.io/kilnhq/kiln:{{ .Version }}" {
			found = true
			require.ElementsMatch(t, []string{"ghcr.io/kilnhq/kiln:{{ .Version }}-amd64", "ghcr.io/kilnhq/kiln:{{ .Version }}-arm64"}, m.Images)
		}
	}
	require.True(t, found, "no manifest tagged with the version for kiln")
	require.Len(t, c.Dockers, 2)
}
