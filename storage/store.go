package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/envelope"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"gocloud.dev/secrets"
)

// Default sizes; see Options.
//
// defaultChunkSize is the size of the buffers that carry content between
// the goroutines of a write (read and hash, encrypt, store): small enough
// that a buffer is still in the CPU's cache when the next stage reads it
// (a 1 MiB buffer is not, on CPUs with 512 KiB of L2, and the stores and
// copies then cost twice the CPU time), large enough that channel hand-offs
// and write calls are few.
const (
	DefaultMaxPartSize     int64 = 1 << 30
	DefaultWriteBufferSize       = 8 << 20
	defaultChunkSize             = 256 << 10
	defaultChunks                = 4
	defaultKeyID                 = "default"
	objectPrefix                 = "blobs/"
)

// Options configures a Store. The zero value of every field is safe; a nil
// *Options is the zero value.
type Options struct {
	// Keeper wraps each blob's data key (envelope encryption). Encryption is
	// on by default: with a nil Keeper, New fails unless DisableEncryption is
	// set.
	Keeper *secrets.Keeper
	// KeyID names Keeper's key in each blob's record, so that rotation knows
	// which data keys to re-wrap. Default "default". Change it whenever
	// Keeper changes to a new key, and list the old keeper in
	// PreviousKeepers until RotateKeys has run.
	KeyID string
	// PreviousKeepers unwraps data keys wrapped by earlier key-encryption
	// keys, by KeyID. Only RotateKeys and reads use them; new data keys are
	// always wrapped by Keeper.
	PreviousKeepers map[string]*secrets.Keeper
	// DisableEncryption stores new blobs in plain text. It must be set
	// explicitly; blobs already stored encrypted stay readable.
	DisableEncryption bool

	// MaxPartSize caps the size of one stored object: longer content is
	// split across several objects, so no write ever reaches an object
	// store's single-object or multipart limits. Default 1 GiB.
	MaxPartSize int64
	// WriteBufferSize is the size of the buffer each object write uses (for
	// S3, the multipart part size). Default 8 MiB; S3 needs at least 5 MiB.
	WriteBufferSize int
	// MaxBlobSize rejects content longer than this many bytes with a
	// *TooLargeError. Zero means no limit.
	MaxBlobSize int64

	// Sync, when set, is called after each object is written and before
	// anything refers to it, to make it durable. Open sets it for file://
	// buckets, which do not fsync by themselves.
	Sync func(ctx context.Context, key string) error
	// CacheContent leaves objects of 4 MiB and more in a local directory
	// (a bucket with Sync) in the operating system's page cache. By
	// default their pages are dropped once on disk, behind each write and
	// each read: large layers are streamed once, and caching them evicts
	// the pages that matter (metadata, manifests, small blobs) and makes
	// every write wait for fresh memory. Set it when the machine has
	// memory to spare and the same large blobs are pulled again and again.
	CacheContent bool

	// ManifestCacheSize bounds the memory used to keep recently read
	// manifests (which are immutable). Default 64 MiB; negative disables.
	ManifestCacheSize int64
	// PullFlushInterval is how often buffered "last pulled" times are
	// written to the metadata backend. Default 5 s.
	PullFlushInterval time.Duration

	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives background errors (failed clean-ups). Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Keeper == nil && !o.DisableEncryption {
		return errors.New("storage: encryption at rest is on by default: set Options.Keeper, or set Options.DisableEncryption to store blobs in plain text")
	}
	if o.Keeper != nil && o.DisableEncryption {
		return errors.New("storage: Options.Keeper and Options.DisableEncryption are both set")
	}
	if o.MaxPartSize < 0 || o.MaxBlobSize < 0 || o.WriteBufferSize < 0 {
		return errors.New("storage: sizes in Options must not be negative")
	}
	if strings.ContainsAny(o.KeyID, "\x00\n") {
		return errors.New("storage: Options.KeyID contains control characters")
	}
	return nil
}

// String describes the effective configuration without secrets, for
// start-up logs.
func (o *Options) String() string {
	enc := "envelope(" + envelope.Scheme + ", key " + o.KeyID + ")"
	if o.DisableEncryption {
		enc = "off"
	}
	prev := make([]string, 0, len(o.PreviousKeepers))
	for id := range o.PreviousKeepers {
		prev = append(prev, id)
	}
	return fmt.Sprintf("encryption=%s previous-keys=%v max-part=%d write-buffer=%d max-blob=%d sync=%t cache-content=%t",
		enc, prev, o.MaxPartSize, o.WriteBufferSize, o.MaxBlobSize, o.Sync != nil, o.CacheContent)
}

// Store is a content-addressed blob store over a gocloud.dev bucket and a
// metadata backend.
//
// Blobs are written once to fresh, opaque object keys; the metadata backend
// maps digests to objects and decides atomically which of two concurrent
// writers of the same content wins. Nothing is moved, copied or listed on a
// request path.
type Store struct {
	bucket *blob.Bucket
	meta   driver.Metadata
	opts   Options
	bufs   sync.Pool
	closed atomic.Bool
	// ownBucket is set by Open: Close closes the bucket too.
	ownBucket bool
	manifests *byteCache
	pulls     *pullRecorder
	// instance identifies this Store in the parts it writes unsynced.
	instance string
}

// New returns a Store over bucket and meta. The caller keeps ownership of
// both and closes them after the Store.
func New(bucket *blob.Bucket, meta driver.Metadata, opts *Options) (*Store, error) {
	if bucket == nil || meta == nil {
		return nil, errors.New("storage: New needs a bucket and a metadata backend")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.KeyID == "" {
		o.KeyID = defaultKeyID
	}
	if o.MaxPartSize == 0 {
		o.MaxPartSize = DefaultMaxPartSize
	}
	if o.WriteBufferSize == 0 {
		o.WriteBufferSize = DefaultWriteBufferSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ManifestCacheSize == 0 {
		o.ManifestCacheSize = 64 << 20
	}
	if o.PullFlushInterval <= 0 {
		o.PullFlushInterval = 5 * time.Second
	}
	s := &Store{bucket: bucket, meta: meta, opts: o, manifests: newByteCache(o.ManifestCacheSize), instance: newUploadID()}
	s.pulls = &pullRecorder{s: s, interval: o.PullFlushInterval}
	s.bufs.New = func() any { b := make([]byte, defaultChunkSize); return &b }
	return s, nil
}

// Close marks the store closed. It closes the bucket when the store was
// made by Open; it never closes the metadata backend, which the caller owns.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pulls.close()
	if !s.ownBucket {
		return nil
	}
	return s.bucket.Close()
}

// Options returns the effective options (with defaults applied).
func (s *Store) Options() Options { return s.opts }

// As exposes the bucket's driver types (see blob.Bucket.As); it returns
// false for nil and for types the bucket does not support.
func (s *Store) As(i any) bool {
	if i == nil {
		return false
	}
	return s.bucket.As(i)
}

// Descriptor identifies stored content.
type Descriptor struct {
	Digest digest.Digest
	Size   int64
}

// newObjectKey returns a fresh, unguessable object key.
func newObjectKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	h := hex.EncodeToString(b[:])
	return objectPrefix + h[:2] + "/" + h
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// newDataKey returns a fresh data key and its encryption record, or nils
// when encryption is off.
func (s *Store) newDataKey(ctx context.Context) (*envelope.DataKey, *driver.Encryption, error) {
	if s.opts.DisableEncryption {
		return nil, nil, nil
	}
	dk, err := envelope.NewDataKey()
	if err != nil {
		return nil, nil, fmt.Errorf("storage: new data key: %w", err)
	}
	wrapped, err := envelope.WrapKey(ctx, s.opts.Keeper, dk)
	if err != nil {
		dk.Destroy()
		return nil, nil, fmt.Errorf("storage: wrap data key: %w", err)
	}
	return dk, &driver.Encryption{Scheme: envelope.Scheme, KeyID: s.opts.KeyID, WrappedKey: wrapped}, nil
}

// keeperFor returns the keeper that wrapped keys under keyID.
func (s *Store) keeperFor(keyID string) (*secrets.Keeper, error) {
	if keyID == s.opts.KeyID && s.opts.Keeper != nil {
		return s.opts.Keeper, nil
	}
	if k := s.opts.PreviousKeepers[keyID]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("storage: no keeper configured for key %q (add it to Options.PreviousKeepers)", keyID)
}

// unwrap returns the data key of an encryption record.
func (s *Store) unwrap(ctx context.Context, e *driver.Encryption) (*envelope.DataKey, error) {
	if e.Scheme != envelope.Scheme {
		return nil, fmt.Errorf("storage: unknown encryption scheme %q", e.Scheme)
	}
	k, err := s.keeperFor(e.KeyID)
	if err != nil {
		return nil, err
	}
	dk, err := envelope.UnwrapKey(ctx, k, e.WrappedKey)
	if err != nil {
		return nil, fmt.Errorf("storage: unwrap data key (key %q): %w", e.KeyID, err)
	}
	return dk, nil
}

// deleteParts removes objects that no record refers to any more. Failures
// are logged: an orphaned object wastes space but is never read.
func (s *Store) deleteParts(ctx context.Context, parts []driver.Part) {
	ctx = context.WithoutCancel(ctx)
	for _, p := range parts {
		if err := s.bucket.Delete(ctx, p.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			s.opts.Logger.Warn("storage: could not delete unreferenced object", "key", p.Key, "err", err)
		}
	}
}

// PutBlob stores the content read from r (until EOF) and returns its
// descriptor. want.Digest, when set, is verified while streaming; its
// algorithm is also the one used to name the content (SHA-256 when unset).
// want.Size, when non-negative, must equal the content's length; pass -1
// when unknown. Content already stored is not stored twice. On any error
// nothing becomes visible.
func (s *Store) PutBlob(ctx context.Context, r io.Reader, want Descriptor) (Descriptor, error) {
	if err := s.checkOpen(); err != nil {
		return Descriptor{}, err
	}
	alg := SHA256
	if want.Digest != "" {
		if err := ValidateDigest(want.Digest); err != nil {
			return Descriptor{}, err
		}
		alg = want.Digest.Algorithm()
	}
	if want.Size >= 0 && s.opts.MaxBlobSize > 0 && want.Size > s.opts.MaxBlobSize {
		return Descriptor{}, &TooLargeError{Limit: s.opts.MaxBlobSize}
	}
	h, err := newHash(alg)
	if err != nil {
		return Descriptor{}, err
	}
	dk, enc, err := s.newDataKey(ctx)
	if err != nil {
		return Descriptor{}, err
	}
	if dk != nil {
		defer dk.Destroy()
	}
	pw := s.newPartWriter(ctx, dk)
	n, err := s.stream(ctx, r, s.limitFor(want.Size, 0), pw, h)
	if err == nil {
		err = checkSize(want.Size, n, s.opts.MaxBlobSize)
	}
	got := digest.NewDigest(alg, h)
	if err == nil && want.Digest != "" && got != want.Digest {
		err = &DigestMismatchError{Want: want.Digest, Got: got, Size: n}
	}
	if err != nil {
		pw.abort()
		return Descriptor{}, err
	}
	parts, err := pw.finish()
	if err != nil {
		return Descriptor{}, err
	}
	rec := &driver.Blob{Digest: got, Size: n, Parts: parts, Encryption: enc, CreatedAt: s.opts.Now().UTC()}
	stored, created, err := s.meta.PutBlob(ctx, rec)
	if err != nil {
		s.deleteParts(ctx, parts)
		return Descriptor{}, wrap("put blob", string(got), err)
	}
	if !created {
		s.deleteParts(ctx, parts)
	}
	return Descriptor{Digest: stored.Digest, Size: stored.Size}, nil
}

// limitFor returns how many bytes of a body declared as want bytes (-1:
// unknown) to read at most when already bytes are stored before it: one
// more than allowed, so an over-long body is detected without reading it.
func (s *Store) limitFor(want, already int64) int64 {
	limit := int64(-1)
	if want >= 0 {
		limit = want + 1
	}
	if s.opts.MaxBlobSize > 0 {
		if m := s.opts.MaxBlobSize - already + 1; limit < 0 || m < limit {
			limit = m
		}
	}
	return limit
}

func checkSize(want, got, max int64) error {
	if max > 0 && got > max {
		return &TooLargeError{Limit: max}
	}
	if want >= 0 && got != want {
		return &SizeMismatchError{Want: want, Got: got}
	}
	return nil
}

// StatBlob returns the descriptor of stored content, or an error matching
// ErrNotFound.
func (s *Store) StatBlob(ctx context.Context, d digest.Digest) (Descriptor, error) {
	if err := s.checkOpen(); err != nil {
		return Descriptor{}, err
	}
	if err := ValidateDigest(d); err != nil {
		return Descriptor{}, err
	}
	b, err := s.meta.GetBlob(ctx, d)
	if err != nil {
		return Descriptor{}, wrap("stat blob", string(d), err)
	}
	return Descriptor{Digest: b.Digest, Size: b.Size}, nil
}

// DeleteBlob removes content. The record goes first, so readers that have
// not opened the blob yet see ErrNotFound; readers already streaming it may
// fail. It returns an error matching ErrNotFound when there is no such blob.
func (s *Store) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ValidateDigest(d); err != nil {
		return err
	}
	b, err := s.meta.DeleteBlob(ctx, d)
	if err != nil {
		return wrap("delete blob", string(d), err)
	}
	s.deleteParts(ctx, b.Parts)
	return nil
}
