// Command genvectors writes the device conformance vectors (package
// conformance, docs/CONFORMANCE.md) to a directory, replacing the files
// there and removing vector files it no longer makes. Run it through
// go generate ./device, which writes device/testdata/conformance.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/securedeviceaccess/sda/device/internal/conformance"
)

func main() {
	dir := flag.String("dir", filepath.Join("testdata", "conformance"), "directory to write the vectors to")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := conformance.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, name := range old {
		if _, keep := files[filepath.Base(name)]; !keep {
			if err := os.Remove(name); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("file name %q", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("genvectors: wrote %d files to %s\n", len(names), dir)
	return nil
}
