// Package berth is a library for building OCI container registries and
// vulnerability-scanning pipelines.
//
// Berth is a set of packages that a Go service imports, not a server that it
// configures. The pieces are:
//
//   - [github.com/berth-dev/berth/storage]: content-addressed blob storage over
//     any gocloud.dev bucket (file, S3, GCS, Azure, memory), envelope-encrypted
//     by default, with chunked and resumable uploads that any node can continue.
//   - [github.com/berth-dev/berth/registry]: the OCI Distribution v1.1
//     http.Handler, registry/pullthrough (a pull-through cache of upstream
//     registries), and registry/registrytest for tests.
//   - [github.com/berth-dev/berth/auth]: identities, scopes, default-deny
//     authorization, HTTP Basic, the Docker token flow, registry tokens,
//     signed URLs (auth/signedurl).
//   - [github.com/berth-dev/berth/lifecycle]: lifecycle policies (ECR JSON).
//   - [github.com/berth-dev/berth/registry/manage]: the management API's
//     repository, image and tag routes, and the OpenAPI document of /api/v1.
//   - [github.com/berth-dev/berth/scan]: vulnerability scanning.
//   - [github.com/berth-dev/berth/events]: events, access log, metrics and
//     rate limits.
//   - [github.com/berth-dev/berth/cvss]: CVSS v2, v3.0, v3.1 and v4.0 parsing,
//     scoring and severity, with highest-source-wins aggregation.
//
// examples/registryd is the complete server built from these packages.
//
// # Security defaults
//
// Every configurable behaviour has a safe default: blobs are encrypted at rest
// with a fresh data key per blob unless encryption is switched off explicitly,
// content is verified against its digest while it streams, nothing
// half-written is ever visible to readers, authorization denies what it was
// not configured to allow, and the server speaks TLS 1.3 unless told
// otherwise.
package berth
