// Package signedurl issues and verifies time-limited, HMAC-signed URLs
// that let whoever holds one read exactly one manifest or blob of one
// repository, with no other credentials (CCC capability Core.F05, signed
// URLs).
//
// A [Signer] holds one or more HMAC-SHA256 keys, each named by a key ID.
// [Signer.Sign] signs a path of the OCI distribution API,
//
//	/v2/<repository>/manifests/<digest>?expires=<unix>&keyid=<id>&signature=<mac>
//	/v2/<repository>/blobs/<digest>?expires=<unix>&keyid=<id>&signature=<mac>
//
// and [Signer.Wrap] turns a registry's Authenticator into one that also
// accepts such URLs: a request carrying any of the three parameters is
// judged by its signature alone, and a valid one authenticates as an
// identity whose only scope is pull on that repository
// ("repository:<name>:pull"), bound to the request's exact path and to
// the methods GET and HEAD. The [Handler] serves the management route that
// mints URLs for callers who may already pull from the repository:
//
//	POST /api/v1/repositories/{name}/signed-urls  {"reference":"v1"} or {"digest":"sha256:…"}, "expiresIn":"15m"
//	→ 201 {"url","path","kind","digest","expiresAt"}
//
// # Digests, not tags
//
// Only digests are signed. The Handler resolves a tag to the digest it
// points at when the URL is minted, so a URL keeps naming the content its
// creator saw: moving the tag later cannot make an old URL serve other
// content, and the URL's content is verifiable by its digest.
//
// # Key rotation
//
// Keys are given oldest first. URLs are signed with the last (newest) key
// and verified with whichever configured key their keyid names, so a new
// key is rolled out by appending it, and an old one retired by removing it
// once the longest-lived URL it signed has expired (at most MaxTTL).
//
// # Errors
//
// Verification failures match auth.ErrUnauthenticated, so the registry
// answers 401 UNAUTHORIZED with its spec error body: a tampered or
// truncated signature, path, expiry or key ID, an unknown key ID, a method
// other than GET or HEAD, extra query parameters, and an expired URL. An
// expired URL is deliberately also 401, not 403: its credential is no
// longer valid, exactly like an expired token, and the response does not
// tell a holder of a forged URL whether only the expiry was wrong (the
// signature is checked before the expiry). Messages of the errors say which
// check failed (for server logs); the response body does not.
//
// Sign fails with an error carrying the InvalidArgument code for an
// invalid repository name, a reference that is not a digest, an unknown
// kind, and an expiry in the past or beyond MaxTTL.
//
// # Concurrency
//
// A Signer and a Handler are safe for concurrent use.
//
// # Security
//
// Signatures are HMAC-SHA256 over a versioned, length-unambiguous string of
// the key ID, the expiry and the decoded path; they are compared in
// constant time. Keys must be at least 32 bytes. The signature is a bearer
// credential until it expires: its query parameter is named "signature",
// which events' access log redacts by default, and the registry logs
// paths, never queries. URLs live at most MaxTTL (default 1 h, at most
// 7 days); a URL whose expiry lies further ahead than MaxTTL plus
// MaxClockSkew (for example after MaxTTL was lowered) is refused. A URL grants pull only: it never
// reaches another repository, another digest, the tag list, an upload or
// the management API (those need other methods or paths, which the
// signature does not cover), and a signed-URL identity cannot mint new
// URLs.
package signedurl
