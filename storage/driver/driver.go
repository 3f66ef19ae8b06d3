// Package driver defines the interfaces that metadata backends implement for
// [github.com/berth-dev/berth/storage].
//
// Users hold the portable *storage.Store; backends (the SQL driver in
// storage/sqlmeta, the in-memory fake in storage/memmeta, or a user's own)
// satisfy the small interfaces here. Shared logic — digest verification,
// encryption, error wrapping — lives once in storage, so a backend only
// stores and returns records.
//
// [Metadata] (blobs and upload sessions) is what every backend implements.
// [Registry] — repositories, manifests, tags and their history, referrers,
// links, references, lifecycle policies, scan results, tokens and the event
// outbox — is an optional upgrade that the storage package finds by type
// assertion. [ScanJobs], the durable queue of vulnerability scans that
// scan.Pipeline uses, is another.
//
// # URLs
//
// Backends register a [MetadataURLOpener] for their URL schemes with
// [DefaultMetadataURLMux] when imported (sqlite, postgres and postgresql by
// storage/sqlmeta; mem by storage/memmeta).
//
// # Errors
//
// Methods return [ErrNotFound], [ErrAlreadyExists], [ErrConflict] and
// [ErrInvalidArgument] (or errors wrapping them) in the situations their
// doc comments name; any other error is reported to callers as an internal
// error. The conformance suite in storage/storagetest checks each of those
// sentences.
//
// # Concurrency
//
// Every method may be called concurrently from many goroutines and from many
// processes sharing one backend. Decisions about who wins a race (the first
// record of a digest, the next chunk of an upload) are made by the backend
// atomically: that is the contract that lets registry nodes be stateless.
//
// # Ownership
//
// Records passed to a method are not retained or modified by it; records
// returned are owned by the caller.
package driver

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/opencontainers/go-digest"
)

// Sentinel errors that backends return (possibly wrapped).
var (
	// ErrNotFound reports that the record does not exist.
	ErrNotFound error = &errcode.Error{Code: errcode.NotFound, Msg: "not found"}
	// ErrAlreadyExists reports that a record with the same identity exists.
	ErrAlreadyExists error = &errcode.Error{Code: errcode.AlreadyExists, Msg: "already exists"}
	// ErrConflict reports that a conditional update lost a race: the stored
	// record is not the version the caller based its update on.
	ErrConflict error = &errcode.Error{Code: errcode.FailedPrecondition, Msg: "conflicting concurrent update"}
)

// Part is one object in the bucket holding a contiguous run of a blob's
// bytes. A blob is the concatenation of its parts, in order. Each part is
// written exactly once at a fresh, opaque key and never modified, moved or
// copied; chunked uploads add parts instead of rewriting objects, which keeps
// every object far below object stores' single-object and multipart limits.
type Part struct {
	// Key is the object's key in the bucket.
	Key string `json:"key"`
	// Size is the number of content (plaintext) bytes the part holds.
	Size int64 `json:"size"`
	// Unsynced, set only in upload sessions, names the store instance that
	// wrote the object without making it durable yet. The store makes it
	// durable before a blob refers to it, and first verifies the content
	// when another instance (or the same one before a restart) wrote it.
	Unsynced string `json:"unsynced,omitempty"`
}

// Encryption records how a blob's parts are encrypted at rest.
type Encryption struct {
	// Scheme names the format of the parts, e.g. envelope.Scheme.
	Scheme string `json:"scheme"`
	// KeyID names the key-encryption key that wrapped WrappedKey, so that
	// key rotation knows which records to re-wrap.
	KeyID string `json:"keyID"`
	// WrappedKey is the blob's data key, encrypted by the key-encryption key.
	WrappedKey []byte `json:"wrappedKey"`
}

// Blob is the record of a stored blob: where its bytes are and how to read
// them.
type Blob struct {
	Digest digest.Digest
	// Size is the content length in bytes.
	Size  int64
	Parts []Part
	// Encryption is nil when the parts are stored in plain text.
	Encryption *Encryption
	// CreatedAt is when the blob was last written: a PutBlob or
	// CommitUpload of a digest that is already recorded raises it to the
	// new record's CreatedAt, so that garbage collection's grace period
	// (see References.DeleteUnreferencedBlob) covers every writer until
	// it links the blob.
	CreatedAt time.Time
}

// HashState is the serialized state of a running hash (see
// encoding.BinaryMarshaler on crypto/sha256 and crypto/sha512 hashes), saved
// with an upload so that finishing it never re-reads data.
type HashState struct {
	Algorithm digest.Algorithm `json:"algorithm"`
	State     []byte           `json:"state"`
}

// Upload is the record of an upload session. Sessions outlive the process
// that started them: any process sharing the bucket and the metadata backend
// can append the next chunk or commit.
type Upload struct {
	// ID is the session's unguessable identifier.
	ID string
	// Version increases by one with every update; updates are conditional on
	// it (optimistic concurrency).
	Version int64
	// Offset is the number of bytes received: the sum of the parts' sizes.
	Offset int64
	Parts  []Part
	// Hashes holds one running hash per tracked algorithm.
	Hashes []HashState
	// Encryption is the data key that every part of this upload is
	// encrypted with; nil when encryption is off.
	Encryption *Encryption
	// Labels are the caller's annotations (for example the repository that
	// started the session). Backends store them verbatim.
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Blobs is the index from digests to stored blobs.
type Blobs interface {
	// PutBlob records b unless a blob with b.Digest exists. It returns the
	// record that is now stored and whether b was the one recorded; when it
	// was not, the caller deletes b's parts, and the stored record's
	// CreatedAt is raised to b.CreatedAt if that is later.
	PutBlob(ctx context.Context, b *Blob) (stored *Blob, created bool, err error)
	// GetBlob returns the record of d, or ErrNotFound.
	GetBlob(ctx context.Context, d digest.Digest) (*Blob, error)
	// DeleteBlob removes the record of d and returns it, so the caller can
	// delete its parts; ErrNotFound when there is none.
	DeleteBlob(ctx context.Context, d digest.Digest) (*Blob, error)
	// ListBlobs returns up to limit records with digests greater than
	// after (the empty digest starts from the beginning), in increasing
	// digest order. It returns an empty slice at the end.
	ListBlobs(ctx context.Context, after digest.Digest, limit int) ([]*Blob, error)
	// SetBlobEncryption replaces the encryption record of d with next if the
	// stored one still has prev's KeyID and WrappedKey; ErrConflict if it
	// does not, ErrNotFound if there is no record. Key rotation uses it to
	// re-wrap data keys without touching content.
	SetBlobEncryption(ctx context.Context, d digest.Digest, prev, next *Encryption) error
}

// Uploads stores upload sessions.
type Uploads interface {
	// CreateUpload stores a new session; ErrAlreadyExists if the ID is taken.
	CreateUpload(ctx context.Context, u *Upload) error
	// GetUpload returns the session, or ErrNotFound.
	GetUpload(ctx context.Context, id string) (*Upload, error)
	// UpdateUpload replaces the stored session with u if the stored version
	// is u.Version-1; ErrConflict if it is not, ErrNotFound if the session
	// does not exist.
	UpdateUpload(ctx context.Context, u *Upload) error
	// DeleteUpload removes the session and returns it, so the caller can
	// delete its parts; ErrNotFound if it does not exist.
	DeleteUpload(ctx context.Context, id string) (*Upload, error)
	// ListUploads returns up to limit sessions last updated before
	// olderThan, for expiring abandoned sessions.
	ListUploads(ctx context.Context, olderThan time.Time, limit int) ([]*Upload, error)
	// CommitUpload atomically removes session id (which must still be at
	// version) and records b, unless a blob with b.Digest exists already.
	// It returns the blob record that is now stored and whether b was the
	// one recorded; when it was not, the caller deletes the session's parts
	// and the stored record's CreatedAt is raised as by PutBlob.
	// ErrNotFound if the session does not exist, ErrConflict if its version
	// differs.
	CommitUpload(ctx context.Context, id string, version int64, b *Blob) (stored *Blob, created bool, err error)
}

// Metadata is what storage.Store needs from a metadata backend.
type Metadata interface {
	Blobs
	Uploads
	// Close releases the backend's resources.
	Close() error
}
