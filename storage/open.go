package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/storage/driver"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // register file://
	_ "gocloud.dev/blob/memblob"  // register mem://
)

// OpenBucket opens a gocloud.dev blob URL (mem:// and file:///dir always;
// s3://bucket, gs://bucket, azblob://container or any other scheme once its
// driver package is imported, as gocloud.dev/blob/s3blob registers s3://)
// and returns it with the sync function the Store needs
// for it (nil when the backend is durable by itself).
//
// file:// buckets are tuned for blob storage: no attribute side files or
// MD5 computation (metadata=skip), temporary files beside their targets
// (no_tmp_dir) and the directory created if missing (create_dir); the
// returned sync function fsyncs each object and its directory, which
// fileblob does not do. Query parameters given in the URL take precedence.
func OpenBucket(ctx context.Context, urlstr string) (*blob.Bucket, func(context.Context, string) error, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: invalid blob URL: %w", err)
	}
	var sync func(context.Context, string) error
	if u.Scheme == "file" {
		q := u.Query()
		for k, v := range map[string]string{"metadata": "skip", "no_tmp_dir": "true", "create_dir": "true"} {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		dir := filepath.FromSlash(u.Path)
		if u.Host != "" && u.Host != "localhost" {
			dir = filepath.FromSlash("/" + u.Host + u.Path)
		}
		sync = fileSyncer(dir)
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("storage: open bucket %s: %w", u.Redacted(), err)
	}
	return b, sync, nil
}

// Open opens the bucket at blobURL (see OpenBucket) and returns a Store over
// it and meta. The Store owns the bucket and closes it in Close; the caller
// keeps ownership of meta. opts.Sync, when nil, is set for the bucket.
func Open(ctx context.Context, blobURL string, meta driver.Metadata, opts *Options) (*Store, error) {
	b, sync, err := OpenBucket(ctx, blobURL)
	if err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Sync == nil {
		o.Sync = sync
	}
	s, err := New(b, meta, &o)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	s.ownBucket = true
	return s, nil
}

// fileSyncer returns a function that makes an object written by fileblob
// durable: the file, its directory, and — the first time a directory is
// seen — the directory's parent, which holds the new directory entry.
func fileSyncer(root string) func(context.Context, string) error {
	var seen sync.Map
	return func(_ context.Context, key string) error {
		path := filepath.Join(root, filepath.FromSlash(key))
		if err := fsync(path); err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if err := fsync(dir); err != nil {
			return err
		}
		if _, ok := seen.LoadOrStore(dir, true); !ok {
			for d := filepath.Dir(dir); len(d) >= len(root); d = filepath.Dir(d) {
				if err := fsync(d); err != nil {
					return err
				}
				if d == root {
					break
				}
			}
		}
		return nil
	}
}

func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenMetadata opens the metadata backend at urlstr through
// driver.DefaultMetadataURLMux: sqlite:// and postgres:// once
// storage/sqlmeta is imported, mem:// once storage/memmeta is. Credentials
// in the URL are never logged or returned in errors.
func OpenMetadata(ctx context.Context, urlstr string) (driver.Metadata, error) {
	return driver.DefaultMetadataURLMux().OpenMetadata(ctx, urlstr)
}
