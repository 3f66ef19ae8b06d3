// Package trivyscan adapts Aqua Security's Trivy (https://trivy.dev) to
// scan.Scanner: it runs "trivy image --input TARBALL --format json" and
// converts Trivy's JSON report (SchemaVersion 2) into a scan.Report, or
// converts a report produced elsewhere with [Parse].
//
// # Mapping
//
// Each entry of Results[].Vulnerabilities becomes a finding:
// VulnerabilityID → ID, PkgName/InstalledVersion/PkgIdentifier.PURL →
// Package, FixedVersion → FixedVersion (Trivy's comma-separated list of
// fixed versions is kept as one string), every source of the CVSS object
// (nvd, ghsa, redhat, …) with its V40Vector, V3Vector and V2Vector →
// Ratings (scores recomputed from the vectors), Trivy's Severity when no
// vector is given, Title/Description, PrimaryURL and References. The
// ecosystem is derived from the result's Type. A report without a
// detected OS and without any result is scan.StatusUnknown.
//
// # Concurrency
//
// A Scanner may run scans concurrently; each writes its own temporary
// tarball.
//
// # Security
//
// Trivy's output is parsed with size bounds (Options.MaxOutput). The
// image is written to a private temporary directory that is removed after
// the scan. Trivy needs its vulnerability database; run it with
// --skip-db-update and a local cache for offline use (Options.Args).
package trivyscan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/internal/execscan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options configure a Scanner. The zero value runs "trivy" from PATH.
type Options struct {
	// Command is the trivy executable; "" means "trivy".
	Command string
	// Args are the arguments; nil means
	// ["image", "--quiet", "--format", "json", "--input", "{image}"],
	// where "{image}" is replaced by the image tarball's path.
	Args []string
	// Env is added to trivy's environment, e.g. "TRIVY_CACHE_DIR=…".
	Env []string
	// TempDir is where image tarballs are written; "" means os.TempDir.
	TempDir string
	// MaxOutput bounds trivy's JSON output; 0 means 256 MiB.
	MaxOutput int64
	// Version is reported in scan.Info.Version (trivy's JSON does not
	// always carry it).
	Version string
	// Now returns LastScanned; nil means time.Now.
	Now func() time.Time
}

// String describes the options for start-up logs, with the values of Env
// redacted (they may hold registry or database credentials).
func (o *Options) String() string {
	env := execscan.RedactEnv(o.Env)
	return fmt.Sprintf("trivyscan.Options{Command: %q, Args: %q, Env: %q, TempDir: %q, MaxOutput: %d, Version: %q}",
		o.Command, o.Args, env, o.TempDir, o.MaxOutput, o.Version)
}

// Scanner runs trivy. It implements scan.Scanner and scan.DBVersioner.
type Scanner struct{ opts Options }

// DBVersion implements scan.DBVersioner: it runs "trivy version --format
// json" and returns the vulnerability database's schema version and
// update time ("v2@2026-11-23T06:15:17Z").
func (s *Scanner) DBVersion(ctx context.Context) (string, error) {
	out, err := execscan.Output(ctx, s.opts.Command, []string{"version", "--format", "json"}, s.opts.Env, 1<<20)
	if err != nil {
		return "", fmt.Errorf("trivyscan: %w", err)
	}
	var v struct {
		VulnerabilityDB *struct {
			Version   int    `json:"Version"`
			UpdatedAt string `json:"UpdatedAt"`
		} `json:"VulnerabilityDB"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.VulnerabilityDB == nil || v.VulnerabilityDB.UpdatedAt == "" {
		return "", errors.New("trivyscan: trivy reports no vulnerability database")
	}
	return fmt.Sprintf("v%d@%s", v.VulnerabilityDB.Version, v.VulnerabilityDB.UpdatedAt), nil
}

// New returns a Scanner; opts may be nil.
func New(opts *Options) (*Scanner, error) {
	s := &Scanner{}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxOutput < 0 {
		return nil, errors.New("trivyscan: negative MaxOutput")
	}
	if s.opts.Command == "" {
		s.opts.Command = "trivy"
	}
	if s.opts.Args == nil {
		s.opts.Args = []string{"image", "--quiet", "--format", "json", "--input", execscan.Placeholder}
	}
	if s.opts.MaxOutput == 0 {
		s.opts.MaxOutput = 256 << 20
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	return s, nil
}

// Info implements scan.Scanner.
func (s *Scanner) Info() scan.Info { return scan.Info{Name: "trivy", Version: s.opts.Version} }

// Scan implements scan.Scanner.
func (s *Scanner) Scan(ctx context.Context, img v1.Image, opts *scan.Options) (*scan.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trivyscan: %w", err)
	}
	d, err := img.Digest()
	if opts != nil && opts.Digest != (v1.Hash{}) {
		d, err = opts.Digest, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trivyscan: %w", err)
	}
	out, err := execscan.Run(ctx, img, s.opts.Command, s.opts.Args, s.opts.Env, s.opts.TempDir, s.opts.MaxOutput)
	if err != nil {
		return nil, fmt.Errorf("trivyscan: %w", err)
	}
	r, err := Parse(out)
	if err != nil {
		return nil, err
	}
	r.Scanner = s.Info()
	r.Digest = d.String()
	r.LastScanned = s.opts.Now().UTC()
	_ = r.Finalize()
	return r, nil
}

// report is the part of Trivy's JSON output that Parse reads.
type report struct {
	SchemaVersion int    `json:"SchemaVersion"`
	ArtifactName  string `json:"ArtifactName"`
	Trivy         *struct {
		Version string `json:"Version"`
	} `json:"Trivy"`
	Metadata struct {
		OS *struct {
			Family string `json:"Family"`
			Name   string `json:"Name"`
			EOSL   bool   `json:"EOSL"`
		} `json:"OS"`
		RepoDigests []string `json:"RepoDigests"`
	} `json:"Metadata"`
	Results []struct {
		Target          string          `json:"Target"`
		Class           string          `json:"Class"`
		Type            string          `json:"Type"`
		Vulnerabilities []vulnerability `json:"Vulnerabilities"`
	} `json:"Results"`
}

type vulnerability struct {
	VulnerabilityID  string `json:"VulnerabilityID"`
	PkgName          string `json:"PkgName"`
	PkgPath          string `json:"PkgPath"`
	InstalledVersion string `json:"InstalledVersion"`
	FixedVersion     string `json:"FixedVersion"`
	PkgIdentifier    struct {
		PURL string `json:"PURL"`
	} `json:"PkgIdentifier"`
	SeveritySource string   `json:"SeveritySource"`
	PrimaryURL     string   `json:"PrimaryURL"`
	Title          string   `json:"Title"`
	Description    string   `json:"Description"`
	Severity       string   `json:"Severity"`
	VendorIDs      []string `json:"VendorIDs"`
	CVSS           map[string]struct {
		V2Vector  string `json:"V2Vector"`
		V3Vector  string `json:"V3Vector"`
		V40Vector string `json:"V40Vector"`
	} `json:"CVSS"`
	References []string `json:"References"`
}

// ecosystems maps Trivy result types to OSV ecosystems.
var ecosystems = map[string]string{
	"gobinary": "Go", "gomod": "Go", "npm": "npm", "yarn": "npm", "pnpm": "npm", "node-pkg": "npm",
	"pip": "PyPI", "pipenv": "PyPI", "poetry": "PyPI", "python-pkg": "PyPI", "cargo": "crates.io",
	"rust-binary": "crates.io", "jar": "Maven", "pom": "Maven", "gradle": "Maven", "nuget": "NuGet",
	"gemspec": "RubyGems", "bundler": "RubyGems", "composer": "Packagist",
}

// Parse converts Trivy's JSON report (trivy image --format json) into a
// Report with Status StatusSucceeded, or StatusUnknown when Trivy found
// neither an OS nor any package. Scanner is "trivy" with the version
// from the report's Trivy.Version field when present; Digest and
// LastScanned are left for the caller. The report is finalized.
func Parse(b []byte) (*scan.Report, error) {
	var tr report
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&tr); err != nil {
		return nil, fmt.Errorf("trivyscan: decoding report: %w", err)
	}
	if tr.SchemaVersion != 2 {
		return nil, fmt.Errorf("trivyscan: unsupported SchemaVersion %d", tr.SchemaVersion)
	}
	r := &scan.Report{Status: scan.StatusSucceeded, Vulnerabilities: []scan.Vulnerability{}, Scanner: scan.Info{Name: "trivy"}}
	if tr.Trivy != nil {
		r.Scanner.Version = tr.Trivy.Version
	}
	osEco := ""
	if o := tr.Metadata.OS; o != nil {
		r.OS = strings.TrimSpace(o.Family + " " + o.Name)
		osEco = osEcosystem(o.Family, o.Name)
	}
	if tr.Metadata.OS == nil && len(tr.Results) == 0 {
		r.Status, r.Reason = scan.StatusUnknown, "trivy detected no operating system and no packages"
	}
	for _, res := range tr.Results {
		eco := ecosystems[res.Type]
		if res.Class == "os-pkgs" {
			eco = osEco
		}
		for _, v := range res.Vulnerabilities {
			f := scan.Vulnerability{
				ID:      v.VulnerabilityID,
				Aliases: slices.Clone(v.VendorIDs),
				Package: scan.Package{
					Name: v.PkgName, Version: v.InstalledVersion, Ecosystem: eco,
					PURL: v.PkgIdentifier.PURL, Location: v.PkgPath,
				},
				FixedVersion: v.FixedVersion,
				Description:  v.Title,
				References:   slices.Clone(v.References),
			}
			if f.Description == "" {
				f.Description = v.Description
			}
			if v.PrimaryURL != "" {
				f.References = append(f.References, v.PrimaryURL)
			}
			for _, src := range sortedKeys(v.CVSS) {
				c := v.CVSS[src]
				for _, vec := range []string{c.V40Vector, c.V3Vector, c.V2Vector} {
					if vec != "" {
						f.Ratings = append(f.Ratings, scan.Rating{Source: src, Vector: vec})
					}
				}
			}
			if sev, err := scan.ParseSeverity(v.Severity); err == nil {
				f.Severity, f.SeveritySource = sev, v.SeveritySource
			}
			r.Vulnerabilities = append(r.Vulnerabilities, f)
		}
	}
	_ = r.Finalize()
	return r, nil
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func osEcosystem(family, ver string) string {
	switch family {
	case "debian":
		major, _, _ := strings.Cut(ver, ".")
		return "Debian:" + major
	case "ubuntu":
		return "Ubuntu:" + ver
	case "alpine":
		p := strings.SplitN(ver, ".", 3)
		if len(p) >= 2 {
			return "Alpine:v" + p[0] + "." + p[1]
		}
	}
	return ""
}
