// Package pullthrough is a pull-through cache for the registry: a
// registry.Mirror that serves the repositories under configured prefixes
// from upstream registries, storing what it fetches so that later pulls,
// and pulls while the upstream is down, are served locally.
//
//	cache, err := pullthrough.New(store, []pullthrough.Upstream{{
//		Prefix: "hub/", URL: "https://registry-1.docker.io", Remote: "library/",
//	}}, &pullthrough.Options{Client: egressClient})
//	h, err := registry.New(store, &registry.Options{Mirror: cache, Authorizer: policy.New(cache.Repositories(reg)), …})
//
// With this configuration, "docker pull registry.example/hub/alpine:3"
// pulls library/alpine:3 from Docker Hub once, and from the store after.
//
// # Names
//
// Each Upstream maps a prefix of this registry's repository names to a
// registry and an optional remote prefix: repository Prefix+"x" is
// Remote+"x" upstream. The longest matching prefix wins. A cached
// repository is created on its first pull, private unless its upstream is
// Public; authorization is as for any repository (pull is needed). Cached
// repositories are read-only for clients: the registry answers pushes,
// uploads and mounts into them with 405 UNSUPPORTED. Deletes evict cached
// content; lifecycle policies and garbage collection treat cached
// repositories like any other. Tag lists, referrers and the catalog show
// what is cached, not what the upstream holds.
//
// # Manifests and tags
//
// A miss fetches the manifest, verifies it against the digest asked for
// (or the upstream's Docker-Content-Digest for a tag) and stores it with
// storage.Store.CacheManifest: unlike a push, it is stored before the
// blobs and child manifests it lists, which are fetched when clients ask
// for them, so an image's blobs may be partly cached. Such references are
// recorded like a push's, so garbage collection keeps the blobs once they
// are cached. A manifest pulled by digest is immutable and never asked
// for again. A cached tag is served for Upstream.TagTTL after the upstream
// last confirmed it; then a HEAD request revalidates it, and the manifest
// is fetched again only when the tag moved. Confirmations are kept in
// memory; after a restart, the tag's own record (when it was last moved)
// stands in for them.
//
// # Blobs
//
// A blob miss streams the upstream's bytes to the client while storing
// them, in one pass and constant memory (a 1 MiB buffer lets the store
// and the client each go at their own pace). The last byte is held back
// until the content matched its digest and was stored: on a mismatch the
// client sees its connection aborted and nothing is stored. Concurrent misses of
// one blob in one repository share one upstream fetch: the first streams
// it, the others wait for it to be stored and read it from the store (no
// request holds a blob in memory). Content the store holds already, through
// another repository, is linked without fetching once a HEAD request
// confirms that the upstream repository has it. When the client that
// started a fetch goes away, the fetch finishes in the background if at
// most Options.BackgroundBytes remain (so the next pull finds the blob
// cached), and is abandoned otherwise; Options.BlobTimeout bounds it
// either way. A Range request for a blob not yet cached gets the whole
// blob (RFC 9110 lets a server ignore Range); once cached, ranges are
// served. A HEAD request for a blob not yet cached starts caching it within
// the background budget.
//
// # Errors
//
// The upstream's 4xx answers (404 MANIFEST_UNKNOWN, 401 UNAUTHORIZED, 403
// DENIED, 429 TOOMANYREQUESTS, …) are passed through as
// *registry.UpstreamError with their status and specification error (a
// 401 carries this registry's challenge, not the upstream's). When the
// upstream fails or cannot be reached (5xx, connection errors, time-outs)
// or throttles (429), cached tags are served as they are (and asked for
// again only after another TTL); without cached content the answer is 502
// (504 for a time-out) with the code UNKNOWN.
// Content that does not match its digest is answered with 502 and not
// stored.
//
// # Security
//
// Credentials are static (Upstream.Username and Password), sent only to
// the upstream's host: with HTTP Basic, or exchanged at the upstream's
// token service for Bearer tokens limited to pulling the one repository
// (go-containerregistry's transport does the exchange and refreshes
// tokens). An https upstream is never contacted over plain HTTP.
// Upstream.String and Cache.Upstreams never show passwords. Every
// upstream request goes through Options.Client's transport, where an
// egress allowlist belongs. A Public upstream lets anonymous clients
// cause upstream requests for any name under its prefix; bound them with
// the server's rate limits.
//
// # Concurrency
//
// A Cache is safe for concurrent use. Single-flight holds within one
// process; several registry nodes sharing a store may each fetch a blob
// once, and the store keeps one copy.
package pullthrough
