package scan_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
)

type source struct {
	mu     sync.Mutex
	images map[v1.Hash]v1.Image
	idx    map[v1.Hash]v1.ImageIndex
	fail   atomic.Int32 // fail this many opens first
}

func (s *source) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	if s.fail.Add(-1) >= 0 {
		return nil, nil, errors.New("transient")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if img, ok := s.images[d]; ok {
		return img, nil, nil
	}
	if idx, ok := s.idx[d]; ok {
		return nil, idx, nil
	}
	return nil, nil, fmt.Errorf("%s: %w", d, driver.ErrNotFound)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func setup(t *testing.T, opts *scan.PipelineOptions) (*scan.Pipeline, *scantest.Scanner, *source, *memmeta.Metadata) {
	t.Helper()
	meta := memmeta.New()
	src := &source{images: map[v1.Hash]v1.Image{}, idx: map[v1.Hash]v1.ImageIndex{}}
	fs := scantest.NewScanner(scan.Info{Name: "fake", Version: "1"})
	p, err := scan.NewPipeline(fs, src, meta, meta, opts)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(context.Background())
	t.Cleanup(func() { p.Close() })
	return p, fs, src, meta
}

func addImage(t *testing.T, src *source, fs *scantest.Scanner, id string) v1.Hash {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	src.mu.Lock()
	src.images[d] = img
	src.mu.Unlock()
	fs.SetResult(d, &scan.Report{Vulnerabilities: []scan.Vulnerability{{ID: id, Package: scan.Package{Name: "p", Version: "1"},
		Ratings: []scan.Rating{{Source: "nvd", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}}}})
	return d
}

func TestPipelinePushAndReport(t *testing.T) {
	p, fs, src, _ := setup(t, nil)
	d := addImage(t, src, fs, "CVE-1")
	r, err := p.Report(context.Background(), d)
	if err != nil || r.Status != scan.StatusPending || !r.LastScanned.IsZero() {
		t.Fatalf("before scan: %+v, %v", r, err)
	}
	p.OnPush("team/app", d)
	waitFor(t, "report", func() bool {
		r, _ := p.Report(context.Background(), d)
		return r.Status == scan.StatusSucceeded
	})
	r, _ = p.Report(context.Background(), d)
	if r.Summary.Critical != 1 || r.DBVersion != "1" {
		t.Errorf("report: %+v", r)
	}
	// A pull of a scanned image does not scan again.
	calls := fs.Calls()
	p.OnPull("team/app", d)
	time.Sleep(20 * time.Millisecond)
	if fs.Calls() != calls {
		t.Error("pull of a scanned image rescanned it")
	}
}

func TestPipelineRetryAndFail(t *testing.T) {
	p, fs, src, _ := setup(t, &scan.PipelineOptions{Backoff: time.Millisecond, MaxAttempts: 3})
	d := addImage(t, src, fs, "CVE-1")
	src.fail.Store(2) // two transient failures, then success
	p.OnPush("team/app", d)
	waitFor(t, "report after retries", func() bool {
		r, _ := p.Report(context.Background(), d)
		return r.Status == scan.StatusSucceeded
	})
	d2 := addImage(t, src, fs, "CVE-2")
	fs.SetError(d2, errors.New("scanner down"))
	p.OnPush("team/app", d2)
	waitFor(t, "failed report", func() bool {
		r, _ := p.Report(context.Background(), d2)
		return r.Status == scan.StatusFailed
	})
	r, _ := p.Report(context.Background(), d2)
	if r.Reason != "scanner down" || r.LastScanned.IsZero() {
		t.Errorf("failed report: %+v", r)
	}
}

// resultsOnly hides every method of a backend but driver.ScanResults, so
// that a Pipeline over it queues in memory.
type resultsOnly struct{ driver.ScanResults }

func TestPipelineQueueFullNeverBlocks(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprint("durable=", durable), func(t *testing.T) { testQueueFull(t, durable) })
	}
}

func testQueueFull(t *testing.T, durable bool) {
	var results driver.ScanResults = resultsOnly{memmeta.New()}
	if durable {
		results = memmeta.New()
	}
	src := &source{images: map[v1.Hash]v1.Image{}}
	fs := scantest.NewScanner(scan.Info{Name: "fake"})
	p, err := scan.NewPipeline(fs, src, results, nil, &scan.PipelineOptions{QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Not started: nothing drains the queue.
	var errs []error
	for i := range 4 {
		errs = append(errs, p.Enqueue("r", v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064d", i)}))
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], scan.ErrQueueFull) {
		t.Errorf("enqueue errors: %v", errs)
	}
	if durable {
		return // the buffer holds two jobs, duplicates or not
	}
	if err := p.Enqueue("r", v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064d", 0)}); err != nil {
		t.Errorf("re-enqueue of a queued digest: %v", err)
	}
}

func TestPipelineIndex(t *testing.T) {
	p, fs, src, _ := setup(t, nil)
	a := addImage(t, src, fs, "CVE-A")
	b := addImage(t, src, fs, "CVE-B")
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: src.images[a]}, mutate.IndexAddendum{Add: src.images[b]})
	d, _ := idx.Digest()
	src.idx[d] = idx
	p.OnPush("team/app", d)
	waitFor(t, "index report", func() bool {
		r, _ := p.Report(context.Background(), d)
		return r.Status == scan.StatusSucceeded
	})
	r, _ := p.Report(context.Background(), d)
	if r.Summary.Total != 2 {
		t.Errorf("index report: %+v", r.Summary)
	}
	if ra, _ := p.Report(context.Background(), a); ra.Status != scan.StatusSucceeded {
		t.Errorf("child report: %+v", ra)
	}
}

func TestPipelineRescanOnDBChange(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	p, fs, src, meta := setup(t, nil)
	ctx := context.Background()
	if err := meta.CreateRepository(ctx, &driver.Repository{Name: "team/app", Visibility: driver.Private, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	recent := addImage(t, src, fs, "CVE-1")
	old := addImage(t, src, fs, "CVE-2")
	pulled := addImage(t, src, fs, "CVE-3")
	for d, m := range map[v1.Hash][2]time.Time{
		recent: {now.Add(-24 * time.Hour)},
		old:    {now.Add(-40 * 24 * time.Hour)},
		pulled: {now.Add(-90 * 24 * time.Hour), now.Add(-time.Hour)},
	} {
		if _, err := meta.PutManifest(ctx, &driver.Manifest{Repository: "team/app", Digest: digest.Digest(d.String()),
			MediaType: "application/vnd.oci.image.manifest.v1+json", PushedAt: m[0], LastPulledAt: m[1]}); err != nil {
			t.Fatal(err)
		}
	}
	// Clock for the sweep window.
	p2, err := scan.NewPipeline(fs, src, meta, meta, &scan.PipelineOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p2.Start(ctx)
	defer p2.Close()
	// The start-up sweep scans the two recent images, not the old one.
	waitFor(t, "sweep", func() bool {
		a, _ := p2.Report(ctx, recent)
		b, _ := p2.Report(ctx, pulled)
		return a.Status == scan.StatusSucceeded && b.Status == scan.StatusSucceeded
	})
	if r, _ := p2.Report(ctx, old); r.Status != scan.StatusPending {
		t.Errorf("old image scanned: %+v", r.Status)
	}
	if n, err := p2.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("sweep with unchanged data queued %d, %v", n, err)
	}
	fs.SetDBVersion("2")
	if n, err := p2.Sweep(ctx); n != 2 || err != nil {
		t.Errorf("sweep after data change queued %d, %v; want 2", n, err)
	}
	waitFor(t, "rescan", func() bool {
		a, _ := p2.Report(ctx, recent)
		b, _ := p2.Report(ctx, pulled)
		return a.DBVersion == "2" && b.DBVersion == "2"
	})
}
