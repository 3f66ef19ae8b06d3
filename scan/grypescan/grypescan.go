// Package grypescan adapts Anchore's Grype (https://github.com/anchore/grype)
// to scan.Scanner: it runs "grype docker-archive:TARBALL -o json" and
// converts Grype's JSON document into a scan.Report, or converts a
// document produced elsewhere with [Parse].
//
// # Mapping
//
// Each entry of matches[] becomes a finding: vulnerability.id → ID,
// relatedVulnerabilities[].id → Aliases, artifact name, version, purl,
// first location and upstream → Package, the lowest of
// vulnerability.fix.versions → FixedVersion (only when fix.state is
// "fixed"), every cvss[] entry of the vulnerability and its related
// records → Ratings (source from cvss.source, scores recomputed from the
// vector), Grype's severity when no vector is given. The vulnerability
// data version is descriptor.db's checksum, or its build time (schema v6
// "status" form included). A document with no distro and no matches is
// scan.StatusUnknown.
//
// # Concurrency
//
// A Scanner may run scans concurrently; each writes its own temporary
// tarball.
//
// # Security
//
// Grype's output is read up to Options.MaxOutput bytes. The image is
// written to a private temporary directory that is removed after the
// scan. For offline use, run Grype with GRYPE_DB_AUTO_UPDATE=false and a
// local database (Options.Env).
package grypescan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/internal/execscan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options configure a Scanner. The zero value runs "grype" from PATH.
type Options struct {
	// Command is the grype executable; "" means "grype".
	Command string
	// Args are the arguments; nil means
	// ["docker-archive:{image}", "-o", "json", "-q"] where "{image}" is
	// replaced by the image tarball's path (also inside an argument).
	Args []string
	// Env is added to grype's environment.
	Env []string
	// TempDir is where image tarballs are written; "" means os.TempDir.
	TempDir string
	// MaxOutput bounds grype's JSON output; 0 means 256 MiB.
	MaxOutput int64
	// Version is reported in scan.Info.Version.
	Version string
	// Now returns LastScanned; nil means time.Now.
	Now func() time.Time
}

// String describes the options for start-up logs, with the values of Env
// redacted (they may hold registry or database credentials).
func (o *Options) String() string {
	env := execscan.RedactEnv(o.Env)
	return fmt.Sprintf("grypescan.Options{Command: %q, Args: %q, Env: %q, TempDir: %q, MaxOutput: %d, Version: %q}",
		o.Command, o.Args, env, o.TempDir, o.MaxOutput, o.Version)
}

// Scanner runs grype. It implements scan.Scanner and scan.DBVersioner.
type Scanner struct{ opts Options }

// DBVersion implements scan.DBVersioner: it runs "grype db status -o
// json" (Grype 0.88 and later) and returns the database's schema version
// and build time ("v6.0.2@2026-11-20T01:31:47Z"); with older Grype,
// whose status is text only, it returns the "Checksum:" line, or the
// "Schema:" and "Built:" lines.
func (s *Scanner) DBVersion(ctx context.Context) (string, error) {
	out, err := execscan.Output(ctx, s.opts.Command, []string{"db", "status", "-o", "json"}, s.opts.Env, 1<<20)
	if err != nil {
		// Grype before 0.88 has no -o for db status.
		if ctx.Err() != nil {
			return "", fmt.Errorf("grypescan: %w", ctx.Err())
		}
		if out, err = execscan.Output(ctx, s.opts.Command, []string{"db", "status"}, s.opts.Env, 1<<20); err != nil {
			return "", fmt.Errorf("grypescan: %w", err)
		}
	}
	var st struct {
		SchemaVersion string `json:"schemaVersion"`
		Built         string `json:"built"`
		Valid         bool   `json:"valid"`
	}
	if json.Unmarshal(out, &st) == nil && st.Built != "" {
		if !st.Valid {
			return "", errors.New("grypescan: grype reports its database as invalid")
		}
		return st.SchemaVersion + "@" + st.Built, nil
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	switch {
	case fields["Checksum"] != "":
		return fields["Checksum"], nil
	case fields["Built"] != "":
		return fields["Schema"] + "@" + fields["Built"], nil
	}
	return "", errors.New("grypescan: grype reports no vulnerability database")
}

// New returns a Scanner; opts may be nil.
func New(opts *Options) (*Scanner, error) {
	s := &Scanner{}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MaxOutput < 0 {
		return nil, errors.New("grypescan: negative MaxOutput")
	}
	if s.opts.Command == "" {
		s.opts.Command = "grype"
	}
	if s.opts.Args == nil {
		s.opts.Args = []string{"docker-archive:" + execscan.Placeholder, "-o", "json", "-q"}
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
func (s *Scanner) Info() scan.Info { return scan.Info{Name: "grype", Version: s.opts.Version} }

// Scan implements scan.Scanner.
func (s *Scanner) Scan(ctx context.Context, img v1.Image, opts *scan.Options) (*scan.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("grypescan: %w", err)
	}
	d, err := img.Digest()
	if opts != nil && opts.Digest != (v1.Hash{}) {
		d, err = opts.Digest, nil
	}
	if err != nil {
		return nil, fmt.Errorf("grypescan: %w", err)
	}
	out, err := execscan.Run(ctx, img, s.opts.Command, s.opts.Args, s.opts.Env, s.opts.TempDir, s.opts.MaxOutput)
	if err != nil {
		return nil, fmt.Errorf("grypescan: %w", err)
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

type document struct {
	Matches []struct {
		Vulnerability          vuln   `json:"vulnerability"`
		RelatedVulnerabilities []vuln `json:"relatedVulnerabilities"`
		Artifact               struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Type      string `json:"type"`
			PURL      string `json:"purl"`
			Locations []struct {
				Path string `json:"path"`
			} `json:"locations"`
			Upstreams []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"upstreams"`
		} `json:"artifact"`
	} `json:"matches"`
	Distro *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"distro"`
	Descriptor struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		DB      struct {
			Built    string `json:"built"`
			Checksum string `json:"checksum"`
			Status   *struct {
				Built         string `json:"built"`
				SchemaVersion string `json:"schemaVersion"`
			} `json:"status"`
		} `json:"db"`
	} `json:"descriptor"`
}

type vuln struct {
	ID          string   `json:"id"`
	Namespace   string   `json:"namespace"`
	Severity    string   `json:"severity"`
	URLs        []string `json:"urls"`
	Description string   `json:"description"`
	CVSS        []struct {
		Source  string `json:"source"`
		Type    string `json:"type"`
		Version string `json:"version"`
		Vector  string `json:"vector"`
	} `json:"cvss"`
	Fix struct {
		Versions []string `json:"versions"`
		State    string   `json:"state"`
	} `json:"fix"`
}

var ecosystems = map[string]string{
	"go-module": "Go", "npm": "npm", "python": "PyPI", "java-archive": "Maven", "rust-crate": "crates.io",
	"gem": "RubyGems", "php-composer": "Packagist", "dotnet": "NuGet",
}

// Parse converts Grype's JSON output (grype -o json) into a finalized
// Report. Scanner is "grype" with descriptor.version; Digest and
// LastScanned are left for the caller.
func Parse(b []byte) (*scan.Report, error) {
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("grypescan: decoding document: %w", err)
	}
	if doc.Descriptor.Name != "" && doc.Descriptor.Name != "grype" {
		return nil, fmt.Errorf("grypescan: document from %q, not grype", doc.Descriptor.Name)
	}
	r := &scan.Report{
		Scanner:         scan.Info{Name: "grype", Version: doc.Descriptor.Version},
		Status:          scan.StatusSucceeded,
		Vulnerabilities: []scan.Vulnerability{},
	}
	db := doc.Descriptor.DB
	switch {
	case db.Checksum != "":
		r.DBVersion = db.Checksum
	case db.Status != nil && db.Status.Built != "":
		r.DBVersion = db.Status.SchemaVersion + "@" + db.Status.Built
	case db.Built != "":
		r.DBVersion = db.Built
	}
	osEco := ""
	if d := doc.Distro; d != nil && d.Name != "" {
		r.OS = strings.TrimSpace(d.Name + " " + d.Version)
		osEco = osEcosystem(d.Name, d.Version)
	} else if len(doc.Matches) == 0 {
		r.Status, r.Reason = scan.StatusUnknown, "grype detected no distribution and no vulnerable packages"
	}
	for _, m := range doc.Matches {
		v, a := m.Vulnerability, m.Artifact
		eco := ecosystems[a.Type]
		if a.Type == "deb" || a.Type == "apk" || a.Type == "rpm" {
			eco = osEco
		}
		f := scan.Vulnerability{
			ID:          v.ID,
			Package:     scan.Package{Name: a.Name, Version: a.Version, Ecosystem: eco, PURL: a.PURL},
			Description: v.Description,
			References:  append([]string(nil), v.URLs...),
		}
		if len(a.Locations) > 0 {
			f.Package.Location = a.Locations[0].Path
		}
		if len(a.Upstreams) > 0 {
			f.Package.SourceName, f.Package.SourceVersion = a.Upstreams[0].Name, a.Upstreams[0].Version
		}
		if v.Fix.State == "fixed" && len(v.Fix.Versions) > 0 {
			f.FixedVersion = v.Fix.Versions[0]
		}
		f.Severity, _ = scan.ParseSeverity(v.Severity)
		for _, x := range append([]vuln{v}, m.RelatedVulnerabilities...) {
			if x.ID != v.ID {
				f.Aliases = append(f.Aliases, x.ID)
			}
			if f.Description == "" {
				f.Description = x.Description
			}
			for _, c := range x.CVSS {
				src := c.Source
				if src == "" {
					src = x.Namespace
				}
				if src == "nvd@nist.gov" {
					src = "nvd"
				}
				if c.Vector != "" && src != "" {
					f.Ratings = append(f.Ratings, scan.Rating{Source: src, Vector: c.Vector})
				}
			}
		}
		r.Vulnerabilities = append(r.Vulnerabilities, f)
	}
	dedupeRatings(r)
	_ = r.Finalize()
	return r, nil
}

func dedupeRatings(r *scan.Report) {
	for i := range r.Vulnerabilities {
		v := &r.Vulnerabilities[i]
		seen := map[scan.Rating]bool{}
		out := v.Ratings[:0]
		for _, x := range v.Ratings {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		v.Ratings = out
	}
}

func osEcosystem(name, ver string) string {
	switch name {
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
