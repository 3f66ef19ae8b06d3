package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob/memblob"
)

// BenchmarkGC measures one garbage collection (mark and sweep) over
// 100,000 blob records, half of them linked to a repository and referenced
// by its manifests, on SQLite and PostgreSQL:
//
//	go test -run NONE -bench GC -benchtime 1x ./storage/
func BenchmarkGC(b *testing.B) {
	const blobs = 100_000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			url := "sqlite://" + b.TempDir() + "/meta.db"
			if backend == "postgres" {
				url = testsvc.Postgres(b)
			}
			var meta driver.Metadata
			var err error
			if meta, err = sqlmeta.Open(ctx, url); err != nil {
				b.Fatal(err)
			}
			defer meta.Close()
			reg := meta.(driver.Registry)
			old := time.Now().Add(-48 * time.Hour)
			if err := reg.CreateRepository(ctx, &driver.Repository{Name: "bench/app", Visibility: driver.Private, CreatedAt: old, UpdatedAt: old}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				var manifests []digest.Digest
				var refs []digest.Digest
				for i := range blobs {
					d := digest.FromString(fmt.Sprint("blob", i))
					if _, _, err := meta.PutBlob(ctx, &driver.Blob{Digest: d, Size: 1, CreatedAt: old}); err != nil {
						b.Fatal(err)
					}
					if i%2 != 0 {
						continue
					}
					if err := reg.LinkBlob(ctx, "bench/app", d, old); err != nil {
						b.Fatal(err)
					}
					if refs = append(refs, d); len(refs) == 100 {
						m := &driver.Manifest{Repository: "bench/app", Digest: digest.FromString(fmt.Sprint("manifest", i)),
							MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Blobs: refs, PushedAt: old}
						if _, err := reg.PutManifest(ctx, m); err != nil {
							b.Fatal(err)
						}
						manifests, refs = append(manifests, m.Digest), nil
					}
				}
				s, err := storage.New(memblob.OpenBucket(nil), meta, &storage.Options{DisableEncryption: true})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				st, err := s.GC(ctx, &storage.GCOptions{Grace: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if st.BlobsDeleted != blobs/2 {
					b.Fatalf("collected %d blobs, want %d", st.BlobsDeleted, blobs/2)
				}
				b.ReportMetric(float64(blobs)/b.Elapsed().Seconds(), "blobs/s")
				// Reset for the next iteration: delete the manifests and
				// collect the rest, links pruned.
				for _, d := range manifests {
					if _, err := reg.DeleteManifest(ctx, "bench/app", d, "bench", old); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.GC(ctx, &storage.GCOptions{Grace: time.Hour}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
