// Package e2e holds Berth's end-to-end tests of the registry with real
// clients; it has no API.
//
// The tests build examples/registryd and run it on a loopback port, over
// plain HTTP and over TLS with its generated CA, with SQLite metadata and a
// file bucket, next to the in-memory registrytest server. Against them they
// run:
//
//   - the OCI distribution-spec conformance suite
//     (github.com/opencontainers/distribution-spec/conformance, installed
//     with go install at a pinned version), in all its workflows and with
//     sha256 and sha512 content;
//   - skopeo, crane, oras and regctl: login, push, pull, multi-platform
//     indexes, copies between repositories, referrers, deletes, tag lists
//     and the catalog, checking results by digest.
//
// .ci/e2e-tools installs the clients. A test whose client is missing skips
// with a message saying so, except when the CI environment variable is
// true, where it fails (see internal/testsvc).
package e2e
