package scantest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Harness drives RunScannerTests.
type Harness struct {
	// NewScanner returns the scanner under test; required. It is called
	// once per subtest.
	NewScanner func(t *testing.T) scan.Scanner
	// Known optionally returns an image the scanner analyses, and IDs of
	// vulnerabilities its report must contain. When nil, only the
	// contract for unknown images is checked.
	Known func(t *testing.T, s scan.Scanner) (img v1.Image, wantIDs []string)
	// Options are passed to every Scan, for scanners that need them
	// (a repository for scanners that pull images themselves); may be
	// nil. Its Digest must be empty.
	Options *scan.Options
}

// RunScannerTests checks the contract of scan.Scanner:
//
//   - Info has a name and does not change;
//   - an image the scanner cannot analyse (random layers) yields a
//     StatusUnknown report with Reason, LastScanned, Scanner and Digest
//     set, no findings, and no error;
//   - a cancelled or expired context yields an error matching
//     context.Canceled or context.DeadlineExceeded, also when it is
//     cancelled while a layer read is stalled (Scan must return within
//     10s, and any error must match context.Canceled);
//   - reports are deterministic: two scans of one image encode to the
//     same JSON apart from LastScanned, and are finalized;
//   - concurrent scans succeed;
//   - the Known image's report has StatusSucceeded and the wanted IDs;
//   - a scan.DBVersioner reports a non-empty, stable version.
func RunScannerTests(t *testing.T, h Harness) {
	t.Helper()
	if h.NewScanner == nil {
		t.Fatal("scantest: Harness.NewScanner is nil")
	}
	t.Run("Info", func(t *testing.T) {
		s := h.NewScanner(t)
		i := s.Info()
		if i.Name == "" {
			t.Fatal("Info().Name is empty")
		}
		if s.Info() != i {
			t.Fatal("Info() changed between calls")
		}
	})
	t.Run("UnknownImage", func(t *testing.T) {
		s := h.NewScanner(t)
		img := randomImage(t)
		d, _ := img.Digest()
		before := time.Now().Add(-time.Second)
		r, err := s.Scan(context.Background(), img, h.Options)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if r.Status != scan.StatusUnknown {
			t.Errorf("Status = %q, want %q", r.Status, scan.StatusUnknown)
		}
		if r.Reason == "" {
			t.Error("Reason is empty")
		}
		if r.LastScanned.Before(before) {
			t.Errorf("LastScanned = %v, want a time of this scan", r.LastScanned)
		}
		if r.Scanner != s.Info() {
			t.Errorf("Scanner = %v, want %v", r.Scanner, s.Info())
		}
		if r.Digest != d.String() {
			t.Errorf("Digest = %q, want %q", r.Digest, d)
		}
		if len(r.Vulnerabilities) != 0 || r.Summary.Total != 0 {
			t.Errorf("findings in an unknown image: %+v", r.Summary)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := h.NewScanner(t)
		img := randomImage(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Scan(ctx, img, h.Options)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Scan with a cancelled context: err = %v, want context.Canceled", err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = s.Scan(ctx, img, h.Options)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Scan with an expired context: err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("CancelDuringScan", func(t *testing.T) {
		s := h.NewScanner(t)
		img := stallingImage(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type result struct{ err error }
		done := make(chan result, 1)
		go func() {
			_, err := s.Scan(ctx, img, h.Options)
			done <- result{err}
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case res := <-done:
			if res.err != nil && !errors.Is(res.err, context.Canceled) {
				t.Errorf("Scan cancelled while reading a stalled layer: err = %v, want context.Canceled", res.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Scan did not return within 10s of its context being cancelled while a layer read stalled")
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		s := h.NewScanner(t)
		img := randomImage(t)
		if h.Known != nil {
			img, _ = h.Known(t, s)
		}
		a := encodeNoTime(t, s, img, h.Options)
		b := encodeNoTime(t, s, img, h.Options)
		if !bytes.Equal(a, b) {
			t.Errorf("two scans differ:\n%s\n%s", a, b)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := h.NewScanner(t)
		img := randomImage(t)
		if h.Known != nil {
			img, _ = h.Known(t, s)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				if _, err := s.Scan(context.Background(), img, h.Options); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	if h.Known != nil {
		t.Run("Known", func(t *testing.T) {
			s := h.NewScanner(t)
			img, want := h.Known(t, s)
			r, err := s.Scan(context.Background(), img, h.Options)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != scan.StatusSucceeded {
				t.Fatalf("Status = %q (%s), want Succeeded", r.Status, r.Reason)
			}
			var got []string
			for _, v := range r.Vulnerabilities {
				got = append(got, v.ID)
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					t.Errorf("report lacks %s; has %v", id, got)
				}
			}
		})
	}
	t.Run("DBVersion", func(t *testing.T) {
		s := h.NewScanner(t)
		dv, ok := s.(scan.DBVersioner)
		if !ok {
			t.Skip("scanner does not implement scan.DBVersioner")
		}
		a, err := dv.DBVersion(context.Background())
		if err != nil || a == "" {
			t.Fatalf("DBVersion = %q, %v", a, err)
		}
		if b, _ := dv.DBVersion(context.Background()); b != a {
			t.Errorf("DBVersion changed without a data change: %q, %q", a, b)
		}
	})
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodeNoTime(t *testing.T, s scan.Scanner, img v1.Image, opts *scan.Options) []byte {
	t.Helper()
	r, err := s.Scan(context.Background(), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := *r
	c.LastScanned = time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	// A finalized report is a fixed point of Finalize.
	if err := c.Finalize(); err != nil {
		t.Logf("Finalize: %v", err)
	}
	if b2, _ := json.Marshal(&c); !bytes.Equal(b, b2) {
		t.Errorf("report was not finalized:\n%s\n%s", b, b2)
	}
	return b
}

// stallingImage returns an image with one layer whose content never
// arrives: reads block until the reader is closed.
func stallingImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, stallLayer{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type stallLayer struct{}

var stallHash = v1.Hash{Algorithm: "sha256", Hex: "5a11ed0000000000000000000000000000000000000000000000000000000000"}

func (stallLayer) Digest() (v1.Hash, error)            { return stallHash, nil }
func (stallLayer) DiffID() (v1.Hash, error)            { return stallHash, nil }
func (stallLayer) Size() (int64, error)                { return 1 << 20, nil }
func (stallLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
func (stallLayer) Compressed() (io.ReadCloser, error)  { return newStallReader(), nil }
func (stallLayer) Uncompressed() (io.ReadCloser, error) {
	return newStallReader(), nil
}

type stallReader struct {
	closed chan struct{}
	once   sync.Once
}

func newStallReader() *stallReader { return &stallReader{closed: make(chan struct{})} }

func (r *stallReader) Read(p []byte) (int, error) {
	<-r.closed
	return 0, errors.New("scantest: read on closed stalled layer")
}

func (r *stallReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}
