// Package manage serves the repository, image and tag routes of Berth's
// management API (/api/v1, JSON) and the OpenAPI 3.1 document of the
// whole API.
//
//	GET    /api/v1/repositories                          repositories the caller may pull from (?n=&last=, Link)
//	PUT    /api/v1/repositories/{name}                   create (201) or replace (200) the settings
//	GET    /api/v1/repositories/{name}                   the settings
//	PATCH  /api/v1/repositories/{name}                   JSON merge patch (RFC 7386) of the settings
//	DELETE /api/v1/repositories/{name}                   the repository with everything in it
//	GET    /api/v1/repositories/{name}/images            images (?n=&last=digest, Link)
//	GET    /api/v1/repositories/{name}/images/{digest}   one image
//	DELETE /api/v1/repositories/{name}/images/{digest}   a manifest and its tags (?force=true)
//	GET    /api/v1/repositories/{name}/tags/{tag}/history  the tag's changes, oldest first (?n=&last=seq, Link)
//	POST   /api/v1/repositories/{name}/tags/{tag}/restore  {"digest"}: point the tag back at a former digest
//	GET    /api/v1/openapi.yaml                          the OpenAPI document (no credentials needed)
//
// A repository's settings are {"name", "visibility": "private"|"public",
// "immutableTags", "immutableTagExclusions": [path.Match patterns],
// "description"}; PUT sets them all (absent ones take their defaults:
// private, mutable, no exclusions, no description) and PATCH those it
// names (null resets one). Unknown fields, wrong types and invalid values
// are answered 400 naming the field.
//
// An image is {"digest", "mediaType", "artifactType", "tags", "platforms",
// "size", "manifestSize", "subject", "children", "annotations",
// "pushedAt", "lastPulledAt", "scan": {"status", "scanner",
// "lastScanned", "summary"}}: size counts the manifest, its config and
// layers and, for an index, its children in the repository, each distinct
// blob once; platforms are the config's platform or the index
// descriptors'; the scan is the latest stored vulnerability report's
// (status "Pending" while there is none).
//
// Deleting an image that an index of the repository lists is refused
// (409 MANIFEST_REFERENCED, naming the indexes) unless ?force=true, which
// deletes it anyway and leaves the index referring to a missing manifest.
// Deleting a repository removes its manifests, tags, tag history, blob
// links and lifecycle policy at once; storage.Store.GC then reclaims the
// blobs that no other repository uses.
//
// Restoring a tag points it at a digest it held before (one in its
// history) that the repository still holds, as a push would: an immutable
// tag pointing elsewhere is not moved (409 TAG_IMMUTABLE), and the change
// is recorded in the history and announced with the tag event.
//
// The other /api/v1 routes are served by other packages: lifecycle
// policies by lifecycle.Handler, tokens by auth/tokens, vulnerability
// reports and scans by scan/scanapi, signed URLs by auth/signedurl.
// [OpenAPI] describes them all.
//
// # Names
//
// Repository names contain slashes, so a path is read from its end: the
// route words (images, images/{digest}, tags/{tag}/history,
// tags/{tag}/restore) are matched first and the rest is the name. A
// slash may also be sent percent-encoded (%2F), as OpenAPI clients encode
// path parameters; a repository whose name ends in a route word (such as
// x/images, or x/lifecycle-policy and x/signed-urls, the words of the
// routes other packages serve) must be named that way on its own
// resource: /api/v1/repositories/x%2Fimages.
//
// # Authorization
//
// Every route but the OpenAPI document goes through the AuthorizeFunc
// (registry.Handler.Authorize shares the registry's authentication and
// policy): reads need pull, restoring a tag push, deleting an image
// delete, and creating, changing or deleting a repository all three
// (with auth/policy: the bootstrap admin, or a token whose scope covers
// the name with "*"). The repository list shows only what the caller may
// pull: anonymous callers see the public repositories. One list request
// examines at most 5000 repositories, so pages may be shorter than asked
// (even empty) while a Link names the next one.
//
// # Events
//
// Every change appends its event to the outbox in the same transaction:
// dev.berth.repository.created, .updated and .deleted,
// dev.berth.manifest.deleted, and dev.berth.tag.created or .moved for a
// restore, with the caller's name in the data's "by".
//
// # Errors
//
// Errors are JSON bodies {"errors":[{"code","message","detail"}]} whose
// detail names the offending field ({"field": "visibility"}) where there
// is one: 400 BODY_INVALID, NAME_INVALID, TAG_INVALID, DIGEST_INVALID,
// PAGINATION_NUMBER_INVALID; 401 UNAUTHORIZED (with a Basic challenge);
// 403 DENIED; 404 NAME_UNKNOWN, MANIFEST_UNKNOWN, TAG_UNKNOWN, NOT_FOUND;
// 405 UNSUPPORTED (with Allow); 409 TAG_IMMUTABLE, MANIFEST_REFERENCED;
// 413 SIZE_INVALID; 415 BODY_INVALID; 429 TOOMANYREQUESTS; 500 UNKNOWN
// (logged with its cause, answered without it).
//
// # Concurrency
//
// A Handler is safe for concurrent use. Concurrent updates of one
// repository are applied in some order, the last one winning; an index
// pushed while an image it lists is being deleted may be left referring
// to it.
//
// # Security
//
// Missing and forbidden repositories answer alike for callers without
// access (403, or 401 when anonymous). Bodies are bounded (MaxBodyBytes)
// and decoded strictly. Responses carry Cache-Control: no-store.
package manage
