package native_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/native"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

type oneImage struct {
	img    v1.Image
	broken atomic.Bool
}

// brokenLayers fails every layer read.
type brokenLayers struct{ v1.Image }

func (b brokenLayers) Layers() ([]v1.Layer, error) { return nil, errors.New("layers unavailable") }

func (o *oneImage) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	if o.broken.Load() {
		return brokenLayers{o.img}, nil, nil
	}
	return o.img, nil, nil
}

// TestPipelineReusesInventory: after the first scan, rescans for new
// vulnerability data match the stored inventory without reading layers.
func TestPipelineReusesInventory(t *testing.T) {
	ctx := context.Background()
	img := alpineImage(t)
	d, _ := img.Digest()
	meta := memmeta.New()
	src := &oneImage{img: img}
	s := newScanner(t, mustDB(t, alpineRecords))
	p, err := scan.NewPipeline(s, src, meta, meta, &scan.PipelineOptions{Backoff: time.Millisecond, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctx)
	defer p.Close()
	p.OnPush("team/app", d)
	wait(t, func() bool { r, _ := p.Report(ctx, d); return r.Status == scan.StatusSucceeded })
	if _, err := meta.GetScanResult(ctx, digest.Digest(d.String()), native.Name, driver.ScanInventory); err != nil {
		t.Fatalf("inventory not stored: %v", err)
	}
	first, _ := p.Report(ctx, d)

	src.broken.Store(true)
	s.SetDB(mustDB(t, `[{"id": "ALPINE-CVE-2025-9", "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
		"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.37.0-r0"}]}]}]}]`))
	if err := p.Enqueue("team/app", d); err != nil {
		t.Fatal(err)
	}
	wait(t, func() bool { r, _ := p.Report(ctx, d); return r.DBVersion != first.DBVersion })
	r, _ := p.Report(ctx, d)
	if r.Status != scan.StatusSucceeded || len(r.Vulnerabilities) != 1 || r.Vulnerabilities[0].ID != "ALPINE-CVE-2025-9" {
		t.Errorf("rescan from inventory: %s %s %+v", r.Status, r.Reason, r.Vulnerabilities)
	}
}

func wait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
