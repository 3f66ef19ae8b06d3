// Command distribution serves the CNCF Distribution v3 registry with the
// filesystem storage driver, no authentication and plain HTTP, for the
// registry benchmark. It is configured the way `registry serve` is, from a
// YAML configuration: access log and info-level application log on, an
// in-memory blob descriptor cache, no upload purging and no health checks.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

const configTemplate = `version: 0.1
log:
  level: info
  formatter: text
storage:
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %q
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
`

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "listen address")
	root := flag.String("root", "", "filesystem storage root directory (required)")
	flag.Parse()
	if *root == "" {
		log.Fatal("distribution: -root is required")
	}
	cfg, err := configuration.Parse(strings.NewReader(fmt.Sprintf(configTemplate, *root, *addr)))
	if err != nil {
		log.Fatalf("distribution: configuration: %v", err)
	}
	reg, err := registry.NewRegistry(context.Background(), cfg)
	if err != nil {
		log.Fatalf("distribution: %v", err)
	}
	if err := reg.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "distribution:", err)
		os.Exit(1)
	}
}
