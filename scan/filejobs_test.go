package scan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestFileJobs(t *testing.T) {
	scantest.RunJobStoreTests(t, func(t *testing.T) scan.JobStore {
		return scan.NewFileJobs(filepath.Join(t.TempDir(), "jobs.json"))
	})
	bad := filepath.Join(t.TempDir(), "jobs.json")
	os.WriteFile(bad, []byte(`{"hello":1}`), 0o600)
	if _, err := scan.NewFileJobs(bad).LoadJobs(context.Background()); err == nil {
		t.Error("loaded a file that is not a job file")
	}
}

func TestFakeJobs(t *testing.T) {
	scantest.RunJobStoreTests(t, func(t *testing.T) scan.JobStore { return scantest.NewJobs() })
}

// TestPipelineResumesJobs: jobs pending when a pipeline closes are saved
// and run by the next pipeline.
func TestPipelineResumesJobs(t *testing.T) {
	ctx := context.Background()
	jobs := scan.NewFileJobs(filepath.Join(t.TempDir(), "jobs.json"))
	meta := memmeta.New()
	src := &source{images: map[v1.Hash]v1.Image{}}
	fs := scantest.NewScanner(scan.Info{Name: "fake"})
	d := addImage(t, src, fs, "CVE-1")

	// Never started: the job stays queued, and Close saves it.
	p1, err := scan.NewPipeline(fs, src, meta, nil, &scan.PipelineOptions{Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Enqueue("team/app", d); err != nil {
		t.Fatal(err)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	saved, _ := jobs.LoadJobs(ctx)
	if len(saved) != 1 || saved[0].Digest != d || saved[0].Repository != "team/app" {
		t.Fatalf("saved jobs: %+v", saved)
	}

	p2, err := scan.NewPipeline(fs, src, meta, nil, &scan.PipelineOptions{Jobs: jobs, SaveInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p2.Start(ctx)
	waitFor(t, "resumed job", func() bool {
		r, _ := p2.Report(ctx, d)
		return r.Status == scan.StatusSucceeded
	})
	waitFor(t, "empty job file", func() bool {
		saved, _ := jobs.LoadJobs(ctx)
		return len(saved) == 0
	})
	p2.Close()
}
