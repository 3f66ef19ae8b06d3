// Package scantest provides an in-memory fake [scan.Scanner] with
// scripted results, and [RunScannerTests], the conformance suite every
// scanner (the fake, the native scanner, the adapters, users' own) runs.
//
// # Concurrency
//
// Scanner is safe for concurrent use; scripting it while scans run is
// allowed.
package scantest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Scanner is a fake scan.Scanner and scan.DBVersioner. Images whose
// digest was scripted with SetResult get a copy of that report (with
// Scanner, DBVersion, Digest and LastScanned filled in and Finalize
// applied); images scripted with SetError get the error; every other
// image gets a StatusUnknown report, as a real scanner gives for an
// image it cannot analyse.
type Scanner struct {
	info scan.Info

	mu      sync.Mutex
	results map[v1.Hash][]byte
	errs    map[v1.Hash]error
	db      string
	now     func() time.Time
	calls   int
}

// NewScanner returns a fake named info.Name ("fake" when empty) with
// vulnerability-data version "1".
func NewScanner(info scan.Info) *Scanner {
	if info.Name == "" {
		info.Name = "fake"
	}
	return &Scanner{info: info, results: map[v1.Hash][]byte{}, errs: map[v1.Hash]error{}, db: "1", now: time.Now}
}

// SetResult scripts the report for the image with manifest digest d. The
// report is copied; its Status defaults to StatusSucceeded.
func (s *Scanner) SetResult(d v1.Hash, r *scan.Report) {
	b, err := json.Marshal(r)
	if err != nil {
		panic("scantest: report does not encode: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[d] = b
	delete(s.errs, d)
}

// SetError scripts Scan to fail with err for the image with digest d.
func (s *Scanner) SetError(d v1.Hash, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[d] = err
	delete(s.results, d)
}

// SetDBVersion sets the version DBVersion reports.
func (s *Scanner) SetDBVersion(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db = v
}

// SetClock replaces time.Now as the source of LastScanned.
func (s *Scanner) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Calls returns how many times Scan was called.
func (s *Scanner) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Info implements scan.Scanner.
func (s *Scanner) Info() scan.Info { return s.info }

// DBVersion implements scan.DBVersioner.
func (s *Scanner) DBVersion(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db, nil
}

// Scan implements scan.Scanner.
func (s *Scanner) Scan(ctx context.Context, img v1.Image, opts *scan.Options) (*scan.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scantest: %w", err)
	}
	var d v1.Hash
	if opts != nil && opts.Digest != (v1.Hash{}) {
		d = opts.Digest
	} else {
		var err error
		if d, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("scantest: %w", err)
		}
	}
	s.mu.Lock()
	s.calls++
	b, ok := s.results[d]
	serr := s.errs[d]
	db, now := s.db, s.now()
	s.mu.Unlock()
	if serr != nil {
		return nil, serr
	}
	r := &scan.Report{Status: scan.StatusUnknown, Reason: "image not known to the fake scanner"}
	if ok {
		r = new(scan.Report)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, err
		}
		if r.Status == "" {
			r.Status = scan.StatusSucceeded
		}
	}
	r.Scanner = s.info
	r.DBVersion = db
	r.Digest = d.String()
	r.LastScanned = now.UTC()
	_ = r.Finalize()
	return r, nil
}

var _ interface {
	scan.Scanner
	scan.DBVersioner
} = (*Scanner)(nil)
