package native

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Name is the scanner's name in reports; IndexVersion its version, which
// changes whenever indexing changes so that stored inventories are
// recomputed.
const (
	Name         = "berth-native"
	IndexVersion = "1"
)

// Options configure a Scanner. The zero value (and nil) is valid.
type Options struct {
	// MaxBinarySize is the size above which executables are not opened
	// to look for Go build information; 0 means 256 MiB. Each scan holds
	// at most one such file in memory at a time.
	MaxBinarySize int64
	// MaxDBSize bounds how much of one package database (dpkg status, apk
	// installed) is read; 0 means 64 MiB.
	MaxDBSize int64
	// Now returns the time recorded as a report's LastScanned; nil means
	// time.Now.
	Now func() time.Time
}

func (o *Options) validate() error {
	if o.MaxBinarySize < 0 || o.MaxDBSize < 0 {
		return errors.New("native: negative size limit")
	}
	if o.MaxBinarySize == 0 {
		o.MaxBinarySize = 256 << 20
	}
	if o.MaxDBSize == 0 {
		o.MaxDBSize = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// String describes the effective options, for start-up logs.
func (o *Options) String() string {
	return "native.Options{MaxBinarySize: " + strconv.FormatInt(o.MaxBinarySize, 10) +
		", MaxDBSize: " + strconv.FormatInt(o.MaxDBSize, 10) + "}"
}

// Scanner is the offline scanner. It implements scan.Scanner,
// scan.Indexer, scan.Matcher and scan.DBVersioner.
type Scanner struct {
	opts Options
	db   atomic.Pointer[DB]
}

// New returns a Scanner matching against db, which must not be nil.
func New(db *DB, opts *Options) (*Scanner, error) {
	if db == nil {
		return nil, errors.New("native: nil DB")
	}
	s := &Scanner{}
	if opts != nil {
		s.opts = *opts
	}
	if err := s.opts.validate(); err != nil {
		return nil, err
	}
	s.db.Store(db)
	return s, nil
}

// SetDB replaces the vulnerability data; scans already running finish
// with the data they started with.
func (s *Scanner) SetDB(db *DB) {
	if db != nil {
		s.db.Store(db)
	}
}

// Reload loads the data at paths (as LoadDB) and swaps it in when its
// version differs from the current data's, reporting whether it did. On
// error the current data stays. Call it periodically, or when the files
// change, to let a Pipeline rescan with new data.
func (s *Scanner) Reload(paths ...string) (bool, error) {
	db, err := LoadDB(paths...)
	if err != nil {
		return false, err
	}
	if db.Version() == s.db.Load().Version() {
		return false, nil
	}
	s.db.Store(db)
	return true, nil
}

// DB returns the current vulnerability data.
func (s *Scanner) DB() *DB { return s.db.Load() }

// Info implements scan.Scanner.
func (s *Scanner) Info() scan.Info { return scan.Info{Name: Name, Version: IndexVersion} }

// DBVersion implements scan.DBVersioner.
func (s *Scanner) DBVersion(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return s.db.Load().Version(), nil
}

// Scan implements scan.Scanner: Index, then Match.
func (s *Scanner) Scan(ctx context.Context, img v1.Image, opts *scan.Options) (*scan.Report, error) {
	inv, err := s.Index(ctx, img)
	if err != nil {
		return nil, err
	}
	if opts != nil && opts.Digest != (v1.Hash{}) {
		inv.Digest = opts.Digest.String()
	}
	return s.Match(ctx, inv)
}

// Match implements scan.Matcher.
func (s *Scanner) Match(ctx context.Context, inv *scan.Inventory) (*scan.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	if inv == nil {
		return nil, errors.New("native: nil inventory")
	}
	db := s.db.Load()
	r := &scan.Report{
		Scanner:     s.Info(),
		DBVersion:   db.Version(),
		Digest:      inv.Digest,
		LastScanned: s.opts.Now().UTC(),
		OS:          inv.OS.String(),
		Status:      scan.StatusSucceeded,
	}
	r.Vulnerabilities = match(db, inv.Packages)
	r.Status, r.Reason = status(db, inv)
	_ = r.Finalize() // unparsable vectors in the feed are dropped
	return r, nil
}

// status decides whether an inventory could be analysed.
func status(db *DB, inv *scan.Inventory) (scan.Status, string) {
	switch {
	case db.Len() == 0:
		return scan.StatusUnknown, "no vulnerability data loaded"
	case len(inv.Unsupported) > 0:
		return scan.StatusUnknown, fmt.Sprintf("package databases not read: %v; findings cover the other packages only", inv.Unsupported)
	case inv.OS != nil && inv.OS.Ecosystem == "":
		return scan.StatusUnknown, "operating system " + strconv.Quote(inv.OS.String()) + " is not supported"
	case inv.OS != nil && db.Records(inv.OS.Ecosystem) == 0:
		return scan.StatusUnknown, "vulnerability data has no records for " + inv.OS.Ecosystem
	case inv.OS == nil && len(inv.Packages) == 0:
		return scan.StatusUnknown, "no operating system or package database recognised"
	}
	osPackages := 0
	for _, p := range inv.Packages {
		if p.Ecosystem == "" {
			return scan.StatusUnknown, "packages of an unrecognised distribution in " + p.Location
		}
		if inv.OS != nil && p.Ecosystem == inv.OS.Ecosystem {
			osPackages++
		}
	}
	if inv.OS != nil && ecosystemKind(inv.OS.Ecosystem) != "" && osPackages == 0 {
		// A distribution without its package database (removed to
		// harden or shrink the image): its packages cannot be listed.
		return scan.StatusUnknown, "no package database found for " + inv.OS.String()
	}
	return scan.StatusSucceeded, ""
}

var _ interface {
	scan.Scanner
	scan.Indexer
	scan.Matcher
	scan.DBVersioner
} = (*Scanner)(nil)
