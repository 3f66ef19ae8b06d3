// Command ggcr serves go-containerregistry's in-memory registry
// (pkg/registry) on plain HTTP, for the registry benchmark. Blobs, manifests
// and uploads live in the process's memory; every request is logged to
// standard error, as the package does by default.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "listen address")
	flag.Parse()
	srv := &http.Server{
		Addr:              *addr,
		Handler:           registry.New(),
		ReadHeaderTimeout: 30 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}
