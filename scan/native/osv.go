package native

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/native/internal/version"
)

// MaxRecordSize bounds one OSV record read from disk.
const MaxRecordSize = 8 << 20

// Advisory is one OSV record (https://ossf.github.io/osv-schema/), as far
// as matching needs it.
//
// Field names follow the schema: ID, Aliases and Upstream (related
// identifiers; both are treated as aliases), Withdrawn (records with it
// set are skipped), Summary and Details (text), Severity (record-wide CVSS
// vectors), Affected, References and DatabaseSpecific (read for GitHub's
// "severity").
type Advisory struct {
	ID               string          `json:"id"`
	Aliases          []string        `json:"aliases,omitempty"`
	Upstream         []string        `json:"upstream,omitempty"`
	Withdrawn        string          `json:"withdrawn,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []OSVSeverity   `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// OSVSeverity is an entry of an OSV record's severity list: Type is
// "CVSS_V2", "CVSS_V3" or "CVSS_V4" and Score the vector.
type OSVSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one affected package of an OSV record.
type Affected struct {
	Package          OSVPackage      `json:"package"`
	Severity         []OSVSeverity   `json:"severity,omitempty"`
	Ranges           []Range         `json:"ranges,omitempty"`
	Versions         []string        `json:"versions,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// OSVPackage identifies an affected package: its OSV ecosystem
// ("Debian:12", "Go", …), its name in that ecosystem (the source package
// for distributions) and optionally its purl.
type OSVPackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is an OSV affected range. Type is "ECOSYSTEM", "SEMVER" or "GIT"
// (GIT ranges are ignored: images carry versions, not commits).
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one event of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link about the vulnerability.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// DB is an in-memory index of OSV records by ecosystem and package name.
// It is immutable once loaded and safe for concurrent use.
type DB struct {
	version string
	count   int
	// ecosystems counts records per ecosystemKey.
	ecosystems map[string]int
	// index maps ecosystemKey+"\x00"+normalised name to the affected
	// entries naming that package.
	index map[string][]entry
}

type entry struct {
	adv *Advisory
	aff int // index into adv.Affected
}

// Version returns the database's version: "sha256:" and the hash of the
// names and contents of every record file, so that equal data has equal
// versions however it was copied.
func (db *DB) Version() string { return db.version }

// Len returns the number of records loaded (withdrawn ones excluded).
func (db *DB) Len() int { return db.count }

// NewDB builds a database from records held in memory; its version hashes
// their JSON encoding.
func NewDB(advisories []*Advisory) (*DB, error) {
	db := &DB{index: map[string][]entry{}, ecosystems: map[string]int{}}
	h := sha256.New()
	for _, a := range advisories {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		h.Write(b)
		db.add(a)
	}
	db.version = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return db, nil
}

// LoadDB reads OSV records from paths: directories (searched recursively
// for *.json and *.zip files), zip archives of *.json records (as
// published by osv.dev, e.g. "Debian/all.zip"), and single *.json files.
// A JSON file may hold one record or an array of records. Records with
// "withdrawn" set are skipped. Any unreadable or invalid file is an
// error naming it.
func LoadDB(paths ...string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errors.New("native: LoadDB needs at least one path")
	}
	// Phase 1: list the record files, in a deterministic order.
	type source struct {
		name string
		read func() ([]byte, error)
	}
	var sources []source
	var zips []*zip.ReadCloser
	defer func() {
		for _, z := range zips {
			z.Close()
		}
	}()
	var list func(p string, top bool) error
	list = func(p string, top bool) error {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("native: %w", err)
		}
		switch {
		case fi.IsDir():
			return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() || q == p {
					return nil
				}
				if ext := strings.ToLower(filepath.Ext(q)); ext == ".json" || ext == ".zip" {
					return list(q, false)
				}
				return nil
			})
		case strings.EqualFold(filepath.Ext(p), ".zip"):
			zr, err := zip.OpenReader(p)
			if err != nil {
				return fmt.Errorf("native: %s: %w", p, err)
			}
			zips = append(zips, zr)
			for _, f := range zr.File {
				if f.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(f.Name), ".json") {
					continue
				}
				name := p + ": " + f.Name
				if f.UncompressedSize64 > MaxRecordSize {
					return fmt.Errorf("native: %s larger than %d bytes", name, MaxRecordSize)
				}
				sources = append(sources, source{filepath.Base(p) + "/" + f.Name, func() ([]byte, error) {
					rc, err := f.Open()
					if err != nil {
						return nil, fmt.Errorf("%s: %w", name, err)
					}
					defer rc.Close()
					b, err := readBounded(rc, MaxRecordSize)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", name, err)
					}
					return b, nil
				}})
			}
			return nil
		default:
			if fi.Size() > MaxRecordSize && !top {
				return fmt.Errorf("native: %s larger than %d bytes", p, MaxRecordSize)
			}
			sources = append(sources, source{filepath.Base(p), func() ([]byte, error) {
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, err
				}
				return b, nil
			}})
			return nil
		}
	}
	for _, p := range paths {
		if err := list(p, true); err != nil {
			return nil, err
		}
	}

	// Phase 2: read, hash and decode in parallel.
	type result struct {
		sum  string
		recs []*Advisory
		err  error
	}
	results := make([]result, len(sources))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(sources))) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sources) {
					return
				}
				b, err := sources[i].read()
				if err != nil {
					results[i].err = fmt.Errorf("native: %w", err)
					continue
				}
				sum := sha256.Sum256(b)
				results[i].sum = hex.EncodeToString(sum[:])
				recs, err := decodeRecords(b)
				if err != nil {
					results[i].err = fmt.Errorf("native: %s: %w", sources[i].name, err)
					continue
				}
				for j, a := range recs {
					if a != nil && a.ID != "" && a.Withdrawn == "" {
						recs[j] = compact(a)
					}
				}
				results[i].recs = recs
			}
		})
	}
	wg.Wait()

	// Phase 3: index in order and derive the version.
	db := &DB{index: map[string][]entry{}, ecosystems: map[string]int{}}
	type fileHash struct{ name, sum string }
	sums := make([]fileHash, 0, len(sources))
	for i, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		sums = append(sums, fileHash{sources[i].name, r.sum})
		for _, a := range r.recs {
			db.addCompact(a)
		}
	}
	slices.SortFunc(sums, func(a, b fileHash) int { return cmpStrings(a.name, b.name, a.sum, b.sum) })
	h := sha256.New()
	for _, s := range sums {
		fmt.Fprintf(h, "%s\x00%s\n", s.name, s.sum)
	}
	db.version = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return db, nil
}

func decodeRecords(b []byte) ([]*Advisory, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var recs []*Advisory
		if err := json.Unmarshal(b, &recs); err != nil {
			return nil, err
		}
		return recs, nil
	}
	var a Advisory
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return []*Advisory{&a}, nil
}

// maxReferences bounds the references kept per record.
const maxReferences = 32

// compact returns a copy of a holding only what matching and reports
// use, so that the DB's memory is bounded by the number of records rather
// than by the length of their texts: the summary, or else the details
// truncated to maxDescription bytes; up to maxReferences references; the
// vendor severity of database_specific; no GIT ranges.
func compact(a *Advisory) *Advisory {
	c := *a
	if c.Summary != "" {
		c.Details = ""
	} else {
		c.Details = truncate(c.Details, maxDescription)
	}
	c.Summary = truncate(c.Summary, maxDescription)
	if len(c.References) > maxReferences {
		c.References = c.References[:maxReferences]
	}
	c.DatabaseSpecific = nil
	if sev := vendorSeverity(a.DatabaseSpecific); sev != scan.SeverityUnknown {
		c.DatabaseSpecific = json.RawMessage(`{"severity":"` + sev.String() + `"}`)
	}
	c.Affected = make([]Affected, len(a.Affected))
	for i, af := range a.Affected {
		af.DatabaseSpecific = nil
		af.Ranges = slices.DeleteFunc(slices.Clone(af.Ranges), func(r Range) bool { return r.Type == "GIT" })
		c.Affected[i] = af
	}
	return &c
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (db *DB) add(a *Advisory) {
	if a == nil || a.ID == "" || a.Withdrawn != "" {
		return
	}
	db.addCompact(compact(a))
}

// addCompact indexes a record already compacted.
func (db *DB) addCompact(a *Advisory) {
	if a == nil || a.ID == "" || a.Withdrawn != "" {
		return
	}
	db.count++
	seen := map[string]bool{}
	for i, af := range a.Affected {
		if af.Package.Name == "" || af.Package.Ecosystem == "" {
			continue
		}
		if e := ecosystemKey(af.Package.Ecosystem); !seen[e] {
			seen[e] = true
			db.ecosystems[e]++
		}
		k := indexKey(af.Package.Ecosystem, af.Package.Name)
		db.index[k] = append(db.index[k], entry{adv: a, aff: i})
	}
}

// ecosystemKey normalises an OSV ecosystem for lookups: case-insensitive,
// and Ubuntu's ":LTS"/":Pro" qualifiers dropped.
func ecosystemKey(eco string) string {
	e := strings.ToLower(strings.TrimSpace(eco))
	if strings.HasPrefix(e, "ubuntu:") {
		e = strings.TrimSuffix(strings.TrimSuffix(e, ":lts"), ":pro")
		e = strings.TrimSuffix(e, ":pro")
	}
	return e
}

func indexKey(eco, name string) string {
	k := ecosystemKey(eco)
	if k == "pypi" {
		name = version.NormalizePyPIName(name)
	}
	return k + "\x00" + name
}

// Records returns the number of records with an affected package of the
// OSV ecosystem eco.
func (db *DB) Records(eco string) int { return db.ecosystems[ecosystemKey(eco)] }

func (db *DB) lookup(eco, name string) []entry { return db.index[indexKey(eco, name)] }
