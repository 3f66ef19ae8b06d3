// Package storage is Berth's content store: content-addressed blobs over any
// gocloud.dev bucket, with upload sessions, envelope encryption at rest and
// a pluggable metadata backend.
//
// A [Store] writes each blob once, to fresh opaque object keys, streaming:
// content is hashed on one goroutine while it is encrypted and written on
// another, through a few fixed buffers, so memory does not grow with blob
// size. The digest (SHA-256 or SHA-512) and size are verified while
// streaming; only when they match does the metadata backend record the blob,
// so nothing half-written is ever visible. Content longer than
// Options.MaxPartSize is split across several objects, so no single write
// approaches an object store's limits. Nothing is moved, copied or listed on
// a request path.
//
// Upload sessions ([Store.StartUpload]) are chunked and resumable. Each
// chunk becomes one or more new objects; the session's parts and its running
// hash states are saved in the metadata backend after every chunk, so
// finishing never re-reads data, and any process sharing the bucket and the
// backend can continue a session another started.
//
// # Encryption
//
// Encryption at rest is on by default: every blob gets a fresh 256-bit data
// key, wrapped by a gocloud.dev/secrets Keeper (a local key file, or any KMS
// by URL); content is stored in the authenticated segmented format of
// storage/envelope, bound to its object key, so a Range read decrypts only the
// segments it needs and a flipped, truncated or swapped ciphertext is a read
// error ([ErrCorrupt]), never wrong bytes. [Store.RotateKeys] re-wraps data
// keys under a new key-encryption key without touching content. Turning
// encryption off takes an explicit Options.DisableEncryption.
//
// # URLs
//
// [Open] and [OpenBucket] take gocloud.dev blob URLs. mem:// and file:///dir
// are always available; import a driver package (gocloud.dev/blob/s3blob,
// gcsblob, azureblob) to add its scheme. file:// buckets are tuned for blob
// storage and made durable with fsync (see OpenBucket); their disk writes
// start while content arrives, and objects of 4 MiB and more leave the
// operating system's page cache once on disk and behind each read, so that
// large layers stream at disk speed without evicting metadata and small
// blobs (Options.CacheContent keeps them). Credentials are never taken from
// URLs: use each cloud's standard environment.
//
// # Errors
//
// Errors match [ErrNotFound], [ErrConflict], [ErrCorrupt] and [ErrClosed]
// with errors.Is, or are one of the typed errors [*DigestMismatchError],
// [*SizeMismatchError], [*InvalidDigestError], [*RangeError],
// [*OffsetError] and [*TooLargeError], which carry the details a caller
// needs to answer a client. Every error carries an internal/errcode code
// that the registry maps to an HTTP status in one place.
//
// # As
//
// [Store.As] reaches the bucket's driver types, as blob.Bucket.As does (for
// example *s3.Client for s3blob). It returns false for nil.
//
// # Concurrency
//
// A Store is safe for concurrent use, and any number of Stores in any
// number of processes may share one bucket and metadata backend. The backend
// decides races atomically: the first writer of a digest wins (the others'
// objects are deleted), and of concurrent appends to one session exactly one
// succeeds while the others get ErrConflict. An *Upload or *BlobReader value
// is used by one goroutine at a time.
//
// # Security
//
// Data keys are zeroed after use and never logged; Options.String redacts
// keepers. Object keys are random, so they reveal nothing about content.
package storage
