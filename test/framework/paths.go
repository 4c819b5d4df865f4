package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// RepoRoot is the repository's top directory, found from this source file's location.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("framework: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// UpstreamBinary returns the path of a pinned upstream binary built by hack/build-upstream.sh.
// BAREMETAL_UPSTREAM_BIN overrides the cache directory.
func UpstreamBinary(name string) (string, error) {
	dir := os.Getenv("BAREMETAL_UPSTREAM_BIN")
	if dir == "" {
		cache := os.Getenv("BAREMETAL_CACHE_DIR")
		if cache == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				return "", fmt.Errorf("locating the upstream binaries: %w", err)
			}
			cache = filepath.Join(base, "cloud-provider-baremetal")
		}
		dir = filepath.Join(cache, "bin")
	}
	return executable(filepath.Join(dir, name), "hack/build-upstream.sh "+name)
}

// ProjectBinary returns the path of one of this repository's binaries built by `make build`.
// BAREMETAL_BIN overrides the directory.
func ProjectBinary(name string) (string, error) {
	dir := os.Getenv("BAREMETAL_BIN")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin")
	}
	return executable(filepath.Join(dir, name), "make build")
}

func executable(path, howToBuild string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s is missing (build it with %q): %w", path, howToBuild, err)
	}
	if info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not executable", path)
	}
	return path, nil
}
