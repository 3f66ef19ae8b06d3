package storage

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// UploadOptions configures a new upload session. A nil *UploadOptions is
// the zero value.
type UploadOptions struct {
	// Algorithms are the digest algorithms hashed while chunks arrive.
	// Default: SHA-256 only. Committing with another algorithm re-reads the
	// stored chunks once, unless no chunk has arrived yet.
	Algorithms []digest.Algorithm
	// Labels are stored with the session verbatim (for example the
	// repository that started it).
	Labels map[string]string
}

// Upload is a chunked, resumable upload session. Its state lives in the
// metadata backend, so any Store sharing the bucket and the backend can
// continue it (see ResumeUpload). An *Upload is not safe for concurrent use;
// concurrent appends through different *Upload values of one session are
// resolved by the backend: one wins, the others get ErrConflict.
type Upload struct {
	s   *Store
	rec *driver.Upload
}

// StartUpload begins an upload session.
func (s *Store) StartUpload(ctx context.Context, opts *UploadOptions) (*Upload, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var o UploadOptions
	if opts != nil {
		o = *opts
	}
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = []digest.Algorithm{SHA256}
	}
	now := s.opts.Now().UTC()
	rec := &driver.Upload{ID: newUploadID(), Version: 1, Labels: maps.Clone(o.Labels), CreatedAt: now, UpdatedAt: now}
	for _, alg := range algs {
		if slices.ContainsFunc(rec.Hashes, func(h driver.HashState) bool { return h.Algorithm == alg }) {
			continue
		}
		st, err := freshHashState(alg)
		if err != nil {
			return nil, err
		}
		rec.Hashes = append(rec.Hashes, st)
	}
	dk, enc, err := s.newDataKey(ctx)
	if err != nil {
		return nil, err
	}
	if dk != nil {
		dk.Destroy()
	}
	rec.Encryption = enc
	if err := s.meta.CreateUpload(ctx, rec); err != nil {
		return nil, wrap("start upload", rec.ID, err)
	}
	return &Upload{s: s, rec: rec}, nil
}

// ResumeUpload returns the session id, which may have been started by
// another process; an error matching ErrNotFound if there is none.
func (s *Store) ResumeUpload(ctx context.Context, id string) (*Upload, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rec, err := s.meta.GetUpload(ctx, id)
	if err != nil {
		return nil, wrap("resume upload", id, err)
	}
	return &Upload{s: s, rec: rec}, nil
}

func newUploadID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ID returns the session's identifier.
func (u *Upload) ID() string { return u.rec.ID }

// Offset returns the number of bytes received so far.
func (u *Upload) Offset() int64 { return u.rec.Offset }

// Labels returns the labels the session was started with.
func (u *Upload) Labels() map[string]string { return maps.Clone(u.rec.Labels) }

// StartedAt returns when the session began.
func (u *Upload) StartedAt() time.Time { return u.rec.CreatedAt }

// UpdatedAt returns when the session last received data.
func (u *Upload) UpdatedAt() time.Time { return u.rec.UpdatedAt }

// Append stores the chunk read from r (until EOF) at offset, which must be
// the session's current Offset (an *OffsetError otherwise). size, when
// non-negative, is the chunk's declared length. It returns the new offset.
// On any error the session is unchanged. Chunks are made durable when the
// session is committed; if the process stops before, Commit (from any
// instance) reads the content back and rejects it when a chunk was lost.
func (u *Upload) Append(ctx context.Context, offset int64, r io.Reader, size int64) (int64, error) {
	next, added, err := u.appendChunk(ctx, offset, r, size, "")
	if err != nil {
		return u.rec.Offset, err
	}
	if next == u.rec {
		return u.rec.Offset, nil
	}
	if err := u.s.meta.UpdateUpload(ctx, next); err != nil {
		u.s.deleteParts(ctx, added)
		return u.rec.Offset, wrap("append to upload", u.rec.ID, err)
	}
	u.rec = next
	return next.Offset, nil
}

// appendChunk streams a chunk into new objects and returns the session
// record as it would be with the chunk, without storing it, plus the new
// parts. commitAlg, when set and nothing has been received yet, replaces
// the tracked algorithms with the one the commit will need.
func (u *Upload) appendChunk(ctx context.Context, offset int64, r io.Reader, size int64, commitAlg digest.Algorithm) (*driver.Upload, []driver.Part, error) {
	s := u.s
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	if offset != u.rec.Offset {
		return nil, nil, &OffsetError{Want: u.rec.Offset, Got: offset}
	}
	if size < -1 {
		return nil, nil, &SizeMismatchError{Want: size, Got: 0}
	}
	if s.opts.MaxBlobSize > 0 && size > 0 && u.rec.Offset+size > s.opts.MaxBlobSize {
		return nil, nil, &TooLargeError{Limit: s.opts.MaxBlobSize}
	}
	states := u.rec.Hashes
	if commitAlg != "" && u.rec.Offset == 0 && !tracks(states, commitAlg) {
		st, err := freshHashState(commitAlg)
		if err != nil {
			return nil, nil, err
		}
		states = []driver.HashState{st}
	}
	hashes := make([]hash.Hash, len(states))
	for i, st := range states {
		h, err := unmarshalHash(st)
		if err != nil {
			return nil, nil, wrap("resume upload", u.rec.ID, err)
		}
		hashes[i] = h
	}
	// Chunks are made durable together when the session is committed: an
	// upload's chunks then cost one round of fsyncs, not one per chunk.
	pw := s.newPartWriter(ctx, nil)
	pw.unsynced = true
	if u.rec.Encryption != nil {
		dk, err := s.unwrap(ctx, u.rec.Encryption)
		if err != nil {
			return nil, nil, wrap("append to upload", u.rec.ID, err)
		}
		defer dk.Destroy()
		pw.dk = dk
	}
	n, err := s.stream(ctx, r, s.limitFor(size, u.rec.Offset), pw, hashes...)
	if err == nil {
		err = checkSize(size, n, -1)
	}
	if err == nil && s.opts.MaxBlobSize > 0 && u.rec.Offset+n > s.opts.MaxBlobSize {
		err = &TooLargeError{Limit: s.opts.MaxBlobSize}
	}
	if err != nil {
		pw.abort()
		return nil, nil, err
	}
	parts, err := pw.finish()
	if err != nil {
		return nil, nil, err
	}
	if n == 0 && len(states) == len(u.rec.Hashes) {
		return u.rec, nil, nil
	}
	next := *u.rec
	next.Version++
	next.Offset += n
	next.Parts = append(slices.Clone(u.rec.Parts), parts...)
	next.Hashes = make([]driver.HashState, len(states))
	for i, h := range hashes {
		st, err := marshalHash(h)
		if err != nil {
			s.deleteParts(ctx, parts)
			return nil, nil, err
		}
		next.Hashes[i] = driver.HashState{Algorithm: states[i].Algorithm, State: st}
	}
	next.UpdatedAt = s.opts.Now().UTC()
	return &next, parts, nil
}

func tracks(states []driver.HashState, alg digest.Algorithm) bool {
	return slices.ContainsFunc(states, func(h driver.HashState) bool { return h.Algorithm == alg })
}

// Commit completes the session: it appends the final chunk from r (nil for
// none; size as in Append), verifies the whole content against want and
// records the blob. On a digest mismatch (*DigestMismatchError) the final
// chunk is discarded and the session stays as it was; on success the
// session is gone.
func (u *Upload) Commit(ctx context.Context, want digest.Digest, r io.Reader, size int64) (Descriptor, error) {
	s := u.s
	if err := ValidateDigest(want); err != nil {
		return Descriptor{}, err
	}
	next, added := u.rec, []driver.Part(nil)
	if r != nil {
		var err error
		if next, added, err = u.appendChunk(ctx, u.rec.Offset, r, size, want.Algorithm()); err != nil {
			return Descriptor{}, err
		}
	}
	got, err := u.digestOf(ctx, next, want.Algorithm(), false)
	if err == nil && got != want {
		err = &DigestMismatchError{Want: want, Got: got, Size: next.Offset}
	}
	var parts []driver.Part
	if err == nil {
		parts, err = u.settle(ctx, next, want)
	}
	if err != nil {
		s.deleteParts(ctx, added)
		return Descriptor{}, err
	}
	rec := &driver.Blob{Digest: got, Size: next.Offset, Parts: parts, Encryption: next.Encryption, CreatedAt: s.opts.Now().UTC()}
	stored, created, err := s.meta.CommitUpload(ctx, u.rec.ID, u.rec.Version, rec)
	if err != nil {
		s.deleteParts(ctx, added)
		return Descriptor{}, wrap("commit upload", u.rec.ID, err)
	}
	if !created {
		s.deleteParts(ctx, next.Parts)
	}
	return Descriptor{Digest: stored.Digest, Size: stored.Size}, nil
}

// settle makes the session's unsynced parts durable, in parallel, and
// returns the parts with their marks cleared. Parts written by another
// store instance, or by this process before a restart, may have lost data
// in a crash after their session recorded them: the whole content is then
// read back and checked against want first.
func (u *Upload) settle(ctx context.Context, rec *driver.Upload, want digest.Digest) ([]driver.Part, error) {
	s := u.s
	var pending []driver.Part
	foreign := false
	for _, p := range rec.Parts {
		if p.Unsynced != "" {
			pending = append(pending, p)
			foreign = foreign || p.Unsynced != s.instance
		}
	}
	if len(pending) == 0 {
		return rec.Parts, nil
	}
	errs := make([]error, len(pending))
	sem := make(chan struct{}, settleParallelism)
	var wg sync.WaitGroup
	for i, p := range pending {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.syncObject(ctx, p.Key, p.Size)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, wrap("commit upload", rec.ID, err)
	}
	if foreign {
		got, err := u.digestOf(ctx, rec, want.Algorithm(), true)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, &DigestMismatchError{Want: want, Got: got, Size: rec.Offset}
		}
	}
	parts := slices.Clone(rec.Parts)
	for i := range parts {
		parts[i].Unsynced = ""
	}
	return parts, nil
}

// settleParallelism bounds the fsyncs a commit runs at once.
const settleParallelism = 8

// digestOf returns the digest of the session's content with algorithm alg,
// from the saved hash state when alg was tracked and reread is false,
// otherwise by reading the stored parts once.
func (u *Upload) digestOf(ctx context.Context, rec *driver.Upload, alg digest.Algorithm, reread bool) (digest.Digest, error) {
	for _, st := range rec.Hashes {
		if st.Algorithm == alg && !reread {
			h, err := unmarshalHash(st)
			if err != nil {
				return "", wrap("commit upload", rec.ID, err)
			}
			return digest.NewDigest(alg, h), nil
		}
	}
	h, err := newHash(alg)
	if err != nil {
		return "", err
	}
	tmp := &driver.Blob{Digest: digest.Digest(string(alg) + ":upload-" + rec.ID), Size: rec.Offset, Parts: rec.Parts, Encryption: rec.Encryption}
	br := &BlobReader{ctx: ctx, s: u.s, blob: tmp, end: tmp.Size}
	if tmp.Encryption != nil && tmp.Size > 0 {
		if br.dk, err = u.s.unwrap(ctx, tmp.Encryption); err != nil {
			return "", err
		}
	}
	defer br.Close()
	if _, err := io.Copy(h, br); err != nil {
		return "", err
	}
	return digest.NewDigest(alg, h), nil
}

// Cancel ends the session and deletes what it stored; an error matching
// ErrNotFound if it is already gone.
func (u *Upload) Cancel(ctx context.Context) error {
	rec, err := u.s.meta.DeleteUpload(ctx, u.rec.ID)
	if err != nil {
		return wrap("cancel upload", u.rec.ID, err)
	}
	u.s.deleteParts(ctx, rec.Parts)
	return nil
}

// ExpireUploads cancels sessions that have received nothing for longer
// than age and returns how many it removed.
func (s *Store) ExpireUploads(ctx context.Context, age time.Duration) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	cutoff := s.opts.Now().Add(-age)
	removed := 0
	for {
		list, err := s.meta.ListUploads(ctx, cutoff, 100)
		if err != nil {
			return removed, wrap("list uploads", "", err)
		}
		if len(list) == 0 {
			return removed, nil
		}
		for _, rec := range list {
			gone, err := s.meta.DeleteUpload(ctx, rec.ID)
			if errors.Is(err, driver.ErrNotFound) {
				continue // committed or cancelled meanwhile
			}
			if err != nil {
				return removed, wrap("expire upload", rec.ID, err)
			}
			s.deleteParts(ctx, gone.Parts)
			removed++
		}
	}
}

// freshHashState returns the saved state of an empty hash of alg.
func freshHashState(alg digest.Algorithm) (driver.HashState, error) {
	h, err := newHash(alg)
	if err != nil {
		return driver.HashState{}, err
	}
	st, err := marshalHash(h)
	if err != nil {
		return driver.HashState{}, err
	}
	return driver.HashState{Algorithm: alg, State: st}, nil
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("storage: hash state cannot be saved")
	}
	return m.MarshalBinary()
}

func unmarshalHash(st driver.HashState) (hash.Hash, error) {
	h, err := newHash(st.Algorithm)
	if err != nil {
		return nil, err
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.State); err != nil {
		return nil, fmt.Errorf("storage: saved %s hash state is invalid: %w", st.Algorithm, err)
	}
	return h, nil
}
