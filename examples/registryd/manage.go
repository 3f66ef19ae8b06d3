package main

import (
	"log/slog"
	"net/http"

	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/manage"
	"github.com/berth-dev/berth/storage"
)

// withManagement serves the management API's repository, image and tag
// routes and its OpenAPI document (/api/v1/openapi.yaml) in front of next
// (the server's mux), sharing the registry's authentication and policy.
// Every other request, the lifecycle-policy and vulnerability routes
// included, goes to next. Being outermost, it receives repository names
// with percent-encoded slashes as sent.
func withManagement(store *storage.Store, h *registry.Handler, next http.Handler, log *slog.Logger) (http.Handler, error) {
	mh, err := manage.New(store, h.Authorize, &manage.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	return mh.Wrap(next), nil
}
