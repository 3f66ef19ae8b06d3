// Package registry serves the OCI Distribution Specification v1.1 as an
// http.Handler over a *storage.Store.
//
// The handler is transport only: it parses requests, asks an
// auth.Authorizer, calls the store and writes responses and the
// specification's error bodies. It supports Docker schema 2 manifests and
// manifest lists as well as OCI manifests, indexes and artifacts (with
// artifactType, subject and the referrers API with artifactType
// filtering); chunked, resumable and monolithic uploads; cross-repository
// mounts (which need pull on the source; without "from", the source is a
// repository the caller may pull that holds the blob); tag parameters on
// pushes by digest (?tag=…, answered with OCI-Tag); tag and catalog
// pagination with Link headers; Range requests on blobs; and deletes. It
// passes the OCI distribution-spec conformance suite in every workflow,
// with sha256 and sha512 content (see registry/e2e).
//
// Options.Mirror makes repositories read-only caches of upstream
// registries (registry/pullthrough implements it): manifests and blob
// misses in them are answered through the Mirror, and an upstream's error
// answers are passed through (UpstreamError).
//
// # Security
//
// Default deny: with no Authorizer every request is refused. Blobs are
// reachable only through repositories that link them, so pull access to
// one repository never reveals another's content; missing and forbidden
// repositories answer alike; the catalog lists only repositories the
// caller may pull from.
//
// # Errors
//
// Every error response carries a specification error body
// ({"errors":[{"code","message","detail"}]}); storage errors are mapped to
// codes and statuses in one table (classify). Server errors are logged
// with their cause and answered without it.
//
// # Concurrency
//
// A Handler is safe for concurrent use; any number of handlers on any
// number of nodes may share one store's bucket and metadata backend.
package registry
