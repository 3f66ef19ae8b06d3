package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob"
)

// GCOptions configures a garbage collection. A nil *GCOptions is the zero
// value.
type GCOptions struct {
	// Grace protects recent content: blobs recorded, objects written and
	// upload sessions updated less than Grace ago are never reclaimed, so
	// pushes in flight (a blob uploaded but not yet linked or referenced by
	// its manifest) are safe. Default 1 hour.
	Grace time.Duration
	// UploadExpiry cancels upload sessions idle for longer. Default 24 h.
	UploadExpiry time.Duration
	// SkipOrphans skips the sweep of objects no record refers to (left by
	// crashes between writing an object and recording it, or by failed
	// deletes). That sweep lists the bucket, which costs a request per
	// thousand objects on cloud stores.
	SkipOrphans bool
	// DryRun reports what would be reclaimed without deleting anything.
	// It prunes no links, so it counts neither the links step 2 of GC
	// would remove nor the blobs that removing them would free.
	DryRun bool
}

// GCStats reports what a collection did (or, with DryRun, would do).
type GCStats struct {
	UploadsExpired int
	// LinksPruned counts repository links removed because no manifest of
	// their repository references their blob any more.
	LinksPruned int64
	// BlobsDeleted and BlobBytes count blob records reclaimed.
	BlobsDeleted int
	BlobBytes    int64
	// OrphansDeleted and OrphanBytes count stored objects that no record
	// referred to.
	OrphansDeleted int
	OrphanBytes    int64
}

// GC reclaims storage online, while pushes and pulls continue:
//
//  1. upload sessions idle for longer than UploadExpiry are cancelled and
//     their objects deleted;
//  2. when the backend implements driver.LinkPruner, every repository's
//     links older than Grace (counted from the latest upload or mount of
//     the blob to the repository) to blobs that no manifest of the
//     repository references are removed: the layers and configs of deleted
//     images (through the registry API, the management API or lifecycle
//     policies) stop being served by the repository and become
//     collectable; pushes in flight are protected by Grace;
//  3. every blob older than Grace that no repository links and no manifest
//     references is removed: the backend decides this atomically with
//     respect to concurrent links (driver.References.DeleteUnreferencedBlob),
//     the record goes first and the objects after;
//  4. objects older than Grace that no blob or session refers to are
//     deleted (unless SkipOrphans).
//
// Every step is idempotent and each deletion leaves the store consistent,
// so a collection killed at any point is completed by the next one.
// Untagged manifests are not collected here: lifecycle policies expire them.
func (s *Store) GC(ctx context.Context, opts *GCOptions) (GCStats, error) {
	var st GCStats
	r, err := s.reg()
	if err != nil {
		return st, err
	}
	var o GCOptions
	if opts != nil {
		o = *opts
	}
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	if o.UploadExpiry <= 0 {
		o.UploadExpiry = 24 * time.Hour
	}
	now := s.opts.Now()
	cutoff := now.Add(-o.Grace)

	// 1. Abandoned uploads.
	if o.DryRun {
		list, err := s.meta.ListUploads(ctx, now.Add(-o.UploadExpiry), 1<<20)
		if err != nil {
			return st, wrap("list uploads", "", err)
		}
		st.UploadsExpired = len(list)
	} else if st.UploadsExpired, err = s.ExpireUploads(ctx, o.UploadExpiry); err != nil {
		return st, err
	}

	// 2. Links of deleted images.
	if p, ok := r.(driver.LinkPruner); ok && !o.DryRun {
		if st.LinksPruned, err = pruneLinks(ctx, r, p, cutoff); err != nil {
			return st, err
		}
	}

	// 3. Unreferenced blobs.
	var after digest.Digest
	for {
		page, err := s.meta.ListBlobs(ctx, after, 500)
		if err != nil {
			return st, wrap("list blobs", "", err)
		}
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			after = b.Digest
			if !b.CreatedAt.Before(cutoff) {
				continue
			}
			if o.DryRun {
				links, manifests, err := r.CountBlobReferences(ctx, b.Digest)
				if err != nil {
					return st, wrap("count references of", string(b.Digest), err)
				}
				if links == 0 && manifests == 0 && !s.isManifest(ctx, r, b.Digest) { // dry runs only
					st.BlobsDeleted++
					st.BlobBytes += b.Size
				}
				continue
			}
			gone, err := r.DeleteUnreferencedBlob(ctx, b.Digest, cutoff)
			switch {
			case errors.Is(err, driver.ErrConflict), errors.Is(err, driver.ErrNotFound):
				continue // referenced, too new, or already gone
			case err != nil:
				return st, wrap("collect blob", string(b.Digest), err)
			}
			s.deleteParts(ctx, gone.Parts)
			st.BlobsDeleted++
			st.BlobBytes += gone.Size
		}
	}

	// 4. Orphaned objects.
	if !o.SkipOrphans {
		if err := s.sweepOrphans(ctx, cutoff, o.DryRun, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// pruneLinks prunes the links of every repository, older than cutoff, to
// blobs that no manifest of the repository references.
func pruneLinks(ctx context.Context, r driver.Registry, p driver.LinkPruner, cutoff time.Time) (int64, error) {
	var total int64
	var after string
	for {
		repos, more, err := r.ListRepositories(ctx, after, 500)
		if err != nil {
			return total, wrap("list repositories", "", err)
		}
		for _, repo := range repos {
			after = repo.Name
			n, err := p.PruneLinks(ctx, repo.Name, cutoff)
			if errors.Is(err, driver.ErrNotFound) {
				continue // deleted meanwhile, links and all
			}
			if err != nil {
				return total, wrap("prune links of", repo.Name, err)
			}
			total += n
		}
		if !more {
			return total, nil
		}
	}
}

// isManifest reports whether d is the content of a manifest some
// repository holds (manifest bytes are stored as blobs that no link or
// manifest's blob list refers to). Only dry runs need it: a real collection
// leaves that decision to DeleteUnreferencedBlob, atomically.
func (s *Store) isManifest(ctx context.Context, r driver.Registry, d digest.Digest) bool {
	var after string
	for {
		repos, more, err := r.ListRepositories(ctx, after, 500)
		if err != nil {
			return true // when in doubt, keep
		}
		for _, repo := range repos {
			after = repo.Name
			if _, err := r.GetManifest(ctx, repo.Name, d); err == nil || !errors.Is(err, driver.ErrNotFound) {
				return true
			}
		}
		if !more {
			return false
		}
	}
}

// sweepOrphans deletes objects under the store's prefix, older than
// cutoff, that no blob record or upload session refers to.
func (s *Store) sweepOrphans(ctx context.Context, cutoff time.Time, dryRun bool, st *GCStats) error {
	known := map[string]struct{}{}
	var after digest.Digest
	for {
		page, err := s.meta.ListBlobs(ctx, after, 1000)
		if err != nil {
			return wrap("list blobs", "", err)
		}
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			after = b.Digest
			for _, p := range b.Parts {
				known[p.Key] = struct{}{}
			}
		}
	}
	// Every session, however recent: a session's parts are known before
	// the session is old enough to expire.
	uploads, err := s.meta.ListUploads(ctx, s.opts.Now().Add(time.Hour), 1<<30)
	if err != nil {
		return wrap("list uploads", "", err)
	}
	for _, u := range uploads {
		for _, p := range u.Parts {
			known[p.Key] = struct{}{}
		}
	}
	it := s.bucket.List(&blob.ListOptions{Prefix: objectPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: list objects: %w", err)
		}
		if _, ok := known[obj.Key]; ok || obj.IsDir || !obj.ModTime.Before(cutoff) {
			continue
		}
		st.OrphansDeleted++
		st.OrphanBytes += obj.Size
		if !dryRun {
			if err := s.bucket.Delete(ctx, obj.Key); err != nil {
				s.opts.Logger.Warn("storage: could not delete an orphaned object", "key", obj.Key, "err", err)
			}
		}
	}
}
