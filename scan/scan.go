package scan

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Scanner analyses one image and reports its known vulnerabilities.
//
// Implementations live in subpackages (native, trivyscan, grypescan,
// harbor) or in users' code; scantest.RunScannerTests checks the contract
// below, and scantest.Scanner is an in-memory fake that passes it.
type Scanner interface {
	// Info names the scanner and its version. It does no I/O and returns
	// the same value on every call.
	Info() Info
	// Scan analyses img, which must not be nil; opts may be nil.
	//
	// Scan returns a Report whose Status is StatusSucceeded when the
	// image's packages could be inventoried and matched, and
	// StatusUnknown (with Reason set and LastScanned set) when the scan
	// ran but the image could not be analysed, for example an image
	// without a recognised operating system or package database. Both are
	// results, not errors. Scan returns an error only when it could not
	// scan at all (layers unreadable, scanner unavailable); callers may
	// retry such errors. When ctx is cancelled Scan stops promptly and
	// returns an error for which errors.Is(err, ctx.Err()) holds.
	//
	// The Report is owned by the caller and has been through
	// [Report.Finalize]. Scan may be called concurrently.
	Scan(ctx context.Context, img v1.Image, opts *Options) (*Report, error)
}

// Info identifies a scanner.
type Info struct {
	// Name is the scanner's name, e.g. "berth-native" or "trivy".
	Name string `json:"name"`
	// Version is the scanner's version.
	Version string `json:"version,omitempty"`
}

// String returns "name" or "name/version".
func (i Info) String() string {
	if i.Version == "" {
		return i.Name
	}
	return i.Name + "/" + i.Version
}

// Options describe the image being scanned, for scanners that need more
// than its bytes. The zero value is valid.
type Options struct {
	// Repository is the repository the image was pushed to, e.g.
	// "team/app". External scanners that pull the image themselves
	// (harbor) need it; others ignore it.
	Repository string
	// Digest is the manifest digest of the image; when empty it is
	// computed from the image.
	Digest v1.Hash
}

// DBVersioner is an optional upgrade of Scanner: a scanner whose results
// depend on vulnerability data reports the data's version, so that
// images can be rescanned when it changes. The version is opaque; equal
// versions mean equal data. The Pipeline detects it by type assertion.
type DBVersioner interface {
	// DBVersion returns the current vulnerability-data version. It may be
	// called concurrently with Scan.
	DBVersion(ctx context.Context) (string, error)
}

// Indexer is an optional upgrade of Scanner that separates inventory
// (which packages an image contains, computed once per manifest) from
// matching (which of them are vulnerable, recomputed whenever the
// vulnerability data changes). A scanner that implements Indexer must
// also implement Matcher; the Pipeline then stores each inventory and
// rescans from it without reading the image's layers again.
type Indexer interface {
	// Index inventories img's packages. Like Scan, it returns an error
	// only when it could not read the image; an inventory without a
	// recognised OS or packages is a result. Safe for concurrent use.
	Index(ctx context.Context, img v1.Image) (*Inventory, error)
}

// Matcher is the other half of [Indexer].
type Matcher interface {
	// Match returns the report for inv, which must not be nil and is not
	// modified. Safe for concurrent use.
	Match(ctx context.Context, inv *Inventory) (*Report, error)
}

// ChildReport is one image of an index and its report.
type ChildReport struct {
	// Digest is the child manifest's digest.
	Digest v1.Hash `json:"digest"`
	// Platform is the child's platform from the index, if any.
	Platform *v1.Platform `json:"platform,omitempty"`
	// Report is the child's report.
	Report *Report `json:"report"`
}

// ScanIndex scans every image of idx with s, descending into nested
// indexes, and returns the reports in the index's order. Children that are
// neither images nor indexes (attestations, signatures and other
// artifacts with non-image media types) are skipped. It stops at the
// first error.
func ScanIndex(ctx context.Context, s Scanner, idx v1.ImageIndex, opts *Options) ([]ChildReport, error) {
	var out []ChildReport
	err := walkIndex(ctx, idx, 0, func(d v1.Descriptor, img v1.Image) error {
		o := Options{Digest: d.Digest}
		if opts != nil {
			o.Repository = opts.Repository
		}
		r, err := s.Scan(ctx, img, &o)
		if err != nil {
			return fmt.Errorf("scan: image %s: %w", d.Digest, err)
		}
		out = append(out, ChildReport{Digest: d.Digest, Platform: d.Platform, Report: r})
		return nil
	})
	return out, err
}

const maxIndexDepth = 8

func walkIndex(ctx context.Context, idx v1.ImageIndex, depth int, fn func(v1.Descriptor, v1.Image) error) error {
	if depth > maxIndexDepth {
		return errors.New("scan: image indexes nested too deeply")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("scan: reading index: %w", err)
	}
	for _, d := range m.Manifests {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return fmt.Errorf("scan: index %s: %w", d.Digest, err)
			}
			if err := walkIndex(ctx, child, depth+1, fn); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("scan: image %s: %w", d.Digest, err)
			}
			if err := fn(d, img); err != nil {
				return err
			}
		}
	}
	return nil
}
