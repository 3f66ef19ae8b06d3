package sqlmeta_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/opencontainers/go-digest"
)

// Benchmark sizes: the catalog holds benchRepos repositories, one of which
// holds benchTags tags; pages are benchPage long.
const (
	benchRepos = 100_000
	benchTags  = 10_000
	benchPage  = 100
)

// benchBackends runs fn against SQLite and PostgreSQL databases filled
// with benchRepos repositories, of which "bench/app" holds benchTags tags
// of one manifest.
func benchBackends(b *testing.B, fn func(b *testing.B, m *sqlmeta.Metadata)) {
	for _, backend := range []string{"SQLite", "Postgres"} {
		b.Run(backend, func(b *testing.B) {
			var url string
			if backend == "SQLite" {
				url = "sqlite://" + filepath.ToSlash(filepath.Join(b.TempDir(), "bench.db"))
			} else {
				url = postgresURL(b)
			}
			m, err := sqlmeta.Open(context.Background(), url)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			fill(b, m, backend == "Postgres")
			b.ResetTimer()
			fn(b, m)
		})
	}
}

func fill(b *testing.B, m *sqlmeta.Metadata, postgres bool) {
	ctx := context.Background()
	r := &driver.Repository{Name: "bench/app", Visibility: driver.Private, ImmutableTags: true, ImmutableTagExclusions: []string{"latest"}}
	if err := m.CreateRepository(ctx, r); err != nil {
		b.Fatal(err)
	}
	mf := &driver.Manifest{Repository: "bench/app", Digest: digest.FromString("m"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1}
	if _, err := m.PutManifest(ctx, mf); err != nil {
		b.Fatal(err)
	}
	var db *sql.DB
	m.As(&db)
	// Bulk loads in one statement each; the backend's own methods would
	// take one transaction per row.
	var repos, tags string
	if postgres {
		repos = fmt.Sprintf(`INSERT INTO repositories SELECT 'repo-' || lpad(i::text, 6, '0'), 'private', 0, '[]', '', 1, 1
FROM generate_series(1, %d) AS s(i)`, benchRepos-1)
		tags = fmt.Sprintf(`INSERT INTO tags SELECT 'bench/app', 'v' || lpad(i::text, 5, '0'), '%s', 1, 'bench'
FROM generate_series(1, %d) AS s(i)`, mf.Digest, benchTags)
	} else {
		repos = fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO repositories SELECT printf('repo-%%06d', i), 'private', 0, '[]', '', 1, 1 FROM s`, benchRepos-1)
		tags = fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO tags SELECT 'bench/app', printf('v%%05d', i), '%s', 1, 'bench' FROM s`, benchTags, mf.Digest)
	}
	for _, q := range []string{repos, tags, "ANALYZE"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
}

// BenchmarkTagResolution measures GetTag, the lookup behind every pull by
// tag, from parallel goroutines.
func BenchmarkTagResolution(b *testing.B) {
	benchBackends(b, func(b *testing.B, m *sqlmeta.Metadata) {
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				name := fmt.Sprintf("v%05d", 1+rand.IntN(benchTags))
				if _, err := m.GetTag(ctx, "bench/app", name); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
}

// BenchmarkCatalogPage measures one page of benchPage repositories from a
// catalog of benchRepos, starting at a random point.
func BenchmarkCatalogPage(b *testing.B) {
	benchBackends(b, func(b *testing.B, m *sqlmeta.Metadata) {
		ctx := context.Background()
		for b.Loop() {
			after := fmt.Sprintf("repo-%06d", rand.IntN(benchRepos-benchPage-1))
			page, more, err := m.ListRepositories(ctx, after, benchPage)
			if err != nil || len(page) != benchPage || !more {
				b.Fatalf("ListRepositories = %d, %v, %v", len(page), more, err)
			}
		}
	})
}

// BenchmarkTagListPage measures one page of benchPage tags from a
// repository holding benchTags, starting at a random point.
func BenchmarkTagListPage(b *testing.B) {
	benchBackends(b, func(b *testing.B, m *sqlmeta.Metadata) {
		ctx := context.Background()
		for b.Loop() {
			after := fmt.Sprintf("v%05d", rand.IntN(benchTags-benchPage-1))
			page, more, err := m.ListTags(ctx, "bench/app", after, benchPage)
			if err != nil || len(page) != benchPage || !more {
				b.Fatalf("ListTags = %d, %v, %v", len(page), more, err)
			}
		}
	})
}

// BenchmarkSetTag measures moving a tag (with its history entry and one
// outbox event) from parallel goroutines: the write path of every push by
// tag. SQLite commits with synchronous=FULL.
func BenchmarkSetTag(b *testing.B) {
	benchBackends(b, func(b *testing.B, m *sqlmeta.Metadata) {
		ctx := context.Background()
		d := digest.FromString("m")
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				tag := &driver.Tag{Repository: "bench/app", Name: fmt.Sprintf("w%d", i), Digest: d, UpdatedBy: "bench"}
				ev := driver.Event{Type: "dev.berth.tag.created", Subject: tag.Name}
				if _, err := m.SetTag(ctx, tag, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
}
