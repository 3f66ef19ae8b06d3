// Package memmeta is an in-memory metadata backend for
// [github.com/berth-dev/berth/storage], for users' unit tests and for
// single-process programs that need no durability.
//
// It implements every interface in storage/driver (driver.Metadata,
// driver.Registry and driver.ScanJobs) with the same semantics
// as the SQL backend and passes the same conformance suite
// (storage/storagetest). Its state is lost when the process exits.
//
// # URLs
//
// Importing the package registers the scheme "mem" (Scheme) with
// driver.DefaultMetadataURLMux: each "mem://" opens a new, empty backend.
//
// # Concurrency
//
// All methods are safe for concurrent use; one mutex serialises them, so
// every race the driver contracts describe has exactly one winner.
package memmeta

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Metadata is an in-memory driver.Metadata. The zero value is not usable;
// call New.
type Metadata struct {
	mu      sync.Mutex
	blobs   map[digest.Digest]*driver.Blob
	uploads map[string]*driver.Upload
	registryState
}

var (
	_ driver.Metadata = (*Metadata)(nil)
	_ driver.Registry = (*Metadata)(nil)
	_ driver.ScanJobs = (*Metadata)(nil)
)

// New returns an empty in-memory backend.
func New() *Metadata {
	return &Metadata{
		blobs:         map[digest.Digest]*driver.Blob{},
		uploads:       map[string]*driver.Upload{},
		registryState: newRegistryState(),
	}
}

// Close does nothing and returns nil.
func (m *Metadata) Close() error { return nil }

func copyBlob(b *driver.Blob) *driver.Blob {
	c := *b
	c.Parts = slices.Clone(b.Parts)
	c.Encryption = copyEncryption(b.Encryption)
	return &c
}

func copyEncryption(e *driver.Encryption) *driver.Encryption {
	if e == nil {
		return nil
	}
	c := *e
	c.WrappedKey = slices.Clone(e.WrappedKey)
	return &c
}

func copyUpload(u *driver.Upload) *driver.Upload {
	c := *u
	c.Parts = slices.Clone(u.Parts)
	c.Hashes = make([]driver.HashState, len(u.Hashes))
	for i, h := range u.Hashes {
		c.Hashes[i] = driver.HashState{Algorithm: h.Algorithm, State: slices.Clone(h.State)}
	}
	c.Encryption = copyEncryption(u.Encryption)
	c.Labels = maps.Clone(u.Labels)
	return &c
}

func notFound(what string) error { return fmt.Errorf("memmeta: %s: %w", what, driver.ErrNotFound) }

// PutBlob implements driver.Blobs.
func (m *Metadata) PutBlob(ctx context.Context, b *driver.Blob) (*driver.Blob, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.putBlobLocked(b)
}

func (m *Metadata) putBlobLocked(b *driver.Blob) (*driver.Blob, bool, error) {
	if old, ok := m.blobs[b.Digest]; ok {
		if old.CreatedAt.Before(b.CreatedAt) {
			old.CreatedAt = b.CreatedAt
		}
		return copyBlob(old), false, nil
	}
	m.blobs[b.Digest] = copyBlob(b)
	return copyBlob(b), true, nil
}

// GetBlob implements driver.Blobs.
func (m *Metadata) GetBlob(ctx context.Context, d digest.Digest) (*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, notFound("blob " + string(d))
	}
	return copyBlob(b), nil
}

// DeleteBlob implements driver.Blobs.
func (m *Metadata) DeleteBlob(ctx context.Context, d digest.Digest) (*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, notFound("blob " + string(d))
	}
	delete(m.blobs, d)
	for _, links := range m.links {
		delete(links, d)
	}
	return b, nil
}

// ListBlobs implements driver.Blobs.
func (m *Metadata) ListBlobs(ctx context.Context, after digest.Digest, limit int) ([]*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []digest.Digest
	for d := range m.blobs {
		if d > after {
			keys = append(keys, d)
		}
	}
	slices.Sort(keys)
	if limit >= 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]*driver.Blob, len(keys))
	for i, d := range keys {
		out[i] = copyBlob(m.blobs[d])
	}
	return out, nil
}

// SetBlobEncryption implements driver.Blobs.
func (m *Metadata) SetBlobEncryption(ctx context.Context, d digest.Digest, prev, next *driver.Encryption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return notFound("blob " + string(d))
	}
	if !sameEncryption(b.Encryption, prev) {
		return fmt.Errorf("memmeta: blob %s: %w", d, driver.ErrConflict)
	}
	b.Encryption = copyEncryption(next)
	return nil
}

func sameEncryption(a, b *driver.Encryption) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Scheme == b.Scheme && a.KeyID == b.KeyID && string(a.WrappedKey) == string(b.WrappedKey)
}

// CreateUpload implements driver.Uploads.
func (m *Metadata) CreateUpload(ctx context.Context, u *driver.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.uploads[u.ID]; ok {
		return fmt.Errorf("memmeta: upload %s: %w", u.ID, driver.ErrAlreadyExists)
	}
	m.uploads[u.ID] = copyUpload(u)
	return nil
}

// GetUpload implements driver.Uploads.
func (m *Metadata) GetUpload(ctx context.Context, id string) (*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[id]
	if !ok {
		return nil, notFound("upload " + id)
	}
	return copyUpload(u), nil
}

// UpdateUpload implements driver.Uploads.
func (m *Metadata) UpdateUpload(ctx context.Context, u *driver.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.uploads[u.ID]
	if !ok {
		return notFound("upload " + u.ID)
	}
	if old.Version != u.Version-1 {
		return fmt.Errorf("memmeta: upload %s: %w", u.ID, driver.ErrConflict)
	}
	m.uploads[u.ID] = copyUpload(u)
	return nil
}

// DeleteUpload implements driver.Uploads.
func (m *Metadata) DeleteUpload(ctx context.Context, id string) (*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[id]
	if !ok {
		return nil, notFound("upload " + id)
	}
	delete(m.uploads, id)
	return u, nil
}

// ListUploads implements driver.Uploads.
func (m *Metadata) ListUploads(ctx context.Context, olderThan time.Time, limit int) ([]*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*driver.Upload
	for _, u := range m.uploads {
		if u.UpdatedAt.Before(olderThan) {
			out = append(out, copyUpload(u))
		}
	}
	slices.SortFunc(out, func(a, b *driver.Upload) int {
		return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), cmp.Compare(a.ID, b.ID))
	})
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CommitUpload implements driver.Uploads.
func (m *Metadata) CommitUpload(ctx context.Context, id string, version int64, b *driver.Blob) (*driver.Blob, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[id]
	if !ok {
		return nil, false, notFound("upload " + id)
	}
	if u.Version != version {
		return nil, false, fmt.Errorf("memmeta: upload %s: %w", id, driver.ErrConflict)
	}
	delete(m.uploads, id)
	return m.putBlobLocked(b)
}
