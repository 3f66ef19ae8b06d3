package storage

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/envelope"
	"github.com/opencontainers/go-digest"
)

// RotateKeys re-wraps, with Options.Keeper, the data key of every blob
// wrapped under another key ID (using Options.PreviousKeepers to unwrap
// them). Content is never re-encrypted or rewritten: only the small wrapped
// keys in the metadata change. It returns how many blobs it re-wrapped and
// is safe to run concurrently with reads, writes and other rotations; run it
// until it returns 0 before retiring an old key.
func (s *Store) RotateKeys(ctx context.Context) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if s.opts.Keeper == nil {
		return 0, errors.New("storage: RotateKeys needs Options.Keeper")
	}
	n := 0
	var after digest.Digest
	for {
		page, err := s.meta.ListBlobs(ctx, after, 500)
		if err != nil {
			return n, wrap("list blobs", "", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, b := range page {
			after = b.Digest
			e := b.Encryption
			if e == nil || e.KeyID == s.opts.KeyID {
				continue
			}
			from, err := s.keeperFor(e.KeyID)
			if err != nil {
				return n, err
			}
			wrapped, err := envelope.Rewrap(ctx, from, s.opts.Keeper, e.WrappedKey)
			if err != nil {
				return n, wrap("rewrap key of", string(b.Digest), err)
			}
			next := &driver.Encryption{Scheme: e.Scheme, KeyID: s.opts.KeyID, WrappedKey: wrapped}
			switch err := s.meta.SetBlobEncryption(ctx, b.Digest, e, next); {
			case err == nil:
				n++
			case errors.Is(err, driver.ErrConflict), errors.Is(err, driver.ErrNotFound):
				// Another rotation got there first, or the blob is gone.
			default:
				return n, wrap("rewrap key of", string(b.Digest), err)
			}
		}
	}
}
