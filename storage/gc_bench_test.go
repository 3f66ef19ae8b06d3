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
// 100,000 blob records, half of them linked to a repository, on SQLite and
// PostgreSQL:
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
				for i := range blobs {
					d := digest.FromString(fmt.Sprint("blob", i))
					if _, _, err := meta.PutBlob(ctx, &driver.Blob{Digest: d, Size: 1, CreatedAt: old}); err != nil {
						b.Fatal(err)
					}
					if i%2 == 0 {
						if err := reg.LinkBlob(ctx, "bench/app", d, old); err != nil {
							b.Fatal(err)
						}
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
				// Reset for the next iteration: unlink and collect the rest.
				for i := 0; i < blobs; i += 2 {
					_ = reg.UnlinkBlob(ctx, "bench/app", digest.FromString(fmt.Sprint("blob", i)))
				}
				if _, err := s.GC(ctx, &storage.GCOptions{Grace: time.Hour}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
