package scan

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/cvss"
)

// ReportSchema is the value of Report.Schema for the JSON encoding
// documented in the package doc. It changes only when a field changes
// meaning or is removed; added fields keep it.
const ReportSchema = "berth.dev/scan-report/v1"

// Status is the outcome of a scan.
type Status string

// The statuses.
const (
	// StatusPending: the image has not been scanned yet (LastScanned is
	// zero).
	StatusPending Status = "Pending"
	// StatusSucceeded: the image was inventoried and matched; the report
	// lists every vulnerability the scanner knows of.
	StatusSucceeded Status = "Succeeded"
	// StatusUnknown: the image was scanned (LastScanned is set) but could
	// not be analysed, e.g. no recognised operating system or package
	// database. The absence of findings means nothing.
	StatusUnknown Status = "Unknown"
	// StatusFailed: the scan failed (Reason says why).
	StatusFailed Status = "Failed"
)

// Severity is a vulnerability's qualitative severity: the CVSS rating of
// its highest-scoring vector, or the vendor's severity when no source
// gave a vector, or SeverityUnknown. Severities are ordered, Unknown
// lowest. JSON carries the name.
type Severity uint8

// The severities, in increasing order.
const (
	SeverityUnknown Severity = iota
	SeverityNone
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"Unknown", "None", "Low", "Medium", "High", "Critical"}

// FromCVSS converts a CVSS severity.
func FromCVSS(s cvss.Severity) Severity {
	if s > cvss.Critical {
		return SeverityUnknown
	}
	return Severity(s) + 1
}

// String returns "Unknown", "None", "Low", "Medium", "High" or "Critical".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "Unknown"
}

// ParseSeverity parses a severity name, case-insensitively. It also
// accepts "moderate" (GitHub's and Trivy's word for Medium) and
// "negligible" (Grype's word for None).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "moderate":
		return SeverityMedium, nil
	case "negligible":
		return SeverityNone, nil
	}
	for i, n := range severityNames {
		if strings.EqualFold(n, strings.TrimSpace(s)) {
			return Severity(i), nil
		}
	}
	return SeverityUnknown, errors.New("scan: unknown severity " + strconvQuote(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Report is one scanner's result for one image.
//
// Producers fill in the fields marked "input" and call Finalize, which
// computes the rest and sorts everything, so that equal inputs encode to
// equal JSON.
type Report struct {
	// Schema is ReportSchema.
	Schema string `json:"schema"`
	// Scanner names the scanner that produced the report (input).
	Scanner Info `json:"scanner"`
	// DBVersion is the version of the vulnerability data used; empty if
	// the scanner does not say (input).
	DBVersion string `json:"dbVersion,omitempty"`
	// Digest is the scanned manifest's digest, e.g. "sha256:…" (input).
	Digest string `json:"digest,omitempty"`
	// Status is the outcome (input).
	Status Status `json:"status"`
	// Reason explains StatusUnknown and StatusFailed (input).
	Reason string `json:"reason,omitempty"`
	// LastScanned is when the scan ran; zero (and omitted) only for
	// StatusPending (input).
	LastScanned time.Time `json:"lastScanned,omitzero"`
	// OS is the detected operating system, e.g. "debian 12" (input).
	OS string `json:"os,omitempty"`
	// Vulnerabilities are the findings, one per vulnerability and
	// package, sorted by decreasing severity and score, then ID, package
	// name, version and purl (input; sorted by Finalize).
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	// Summary counts the findings (computed by Finalize).
	Summary Summary `json:"summary"`
}

// Vulnerability is one vulnerability affecting one installed package.
type Vulnerability struct {
	// ID is the advisory's identifier (CVE-…, GHSA-…, GO-…, DSA-…).
	ID string `json:"id"`
	// Aliases are the other identifiers of the same vulnerability, sorted
	// and without ID.
	Aliases []string `json:"aliases,omitempty"`
	// Package is the affected installed package.
	Package Package `json:"package"`
	// FixedVersion is the lowest version fixing the vulnerability that is
	// later than the installed one; empty when no fix is known.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Fixable is FixedVersion != "" (computed by Finalize).
	Fixable bool `json:"fixable"`
	// Ratings are every source's CVSS vector, scored by Finalize from the
	// vector (scores claimed by sources are not trusted), in rank order,
	// the winner first. Producers set Source and Vector.
	Ratings []Rating `json:"ratings,omitempty"`
	// Score is the highest rating's score, 0 without ratings.
	Score float64 `json:"score"`
	// Severity is the highest rating's severity; without ratings the
	// producer's (vendor) severity, SeverityUnknown by default.
	Severity Severity `json:"severity"`
	// SeveritySource names the rating source that set Severity.
	SeveritySource string `json:"severitySource,omitempty"`
	// Description is the advisory's summary or details.
	Description string `json:"description,omitempty"`
	// References are URLs about the vulnerability, sorted, without
	// duplicates.
	References []string `json:"references,omitempty"`
}

// Package is an installed package.
type Package struct {
	// Name is the package's name in its ecosystem (binary package for
	// Debian and Alpine; module path for Go).
	Name string `json:"name"`
	// Version is the installed version.
	Version string `json:"version"`
	// Ecosystem is the OSV ecosystem, e.g. "Debian:12", "Alpine:v3.19",
	// "Go", "npm", "PyPI".
	Ecosystem string `json:"ecosystem,omitempty"`
	// PURL is the package URL, e.g. "pkg:deb/debian/openssl@3.0.11-1?distro=debian-12".
	PURL string `json:"purl,omitempty"`
	// SourceName and SourceVersion are the source package an OS package
	// was built from, when it differs from Name and Version.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Location is the file the package was found in, e.g.
	// "/var/lib/dpkg/status" or "/usr/bin/app".
	Location string `json:"location,omitempty"`
}

// Rating is one source's CVSS vector for a vulnerability.
type Rating struct {
	// Source names who rated it (cvss.SourceNVD, cvss.SourceGHSA,
	// a distribution, …).
	Source string `json:"source"`
	// Vector is the CVSS vector as given by the source (canonicalised by
	// Finalize).
	Vector string `json:"vector"`
	// Version is the CVSS version: "2.0", "3.0", "3.1" or "4.0".
	Version string `json:"version"`
	// Score is the vector's most specific score (cvss.Vector.Score).
	Score float64 `json:"score"`
	// Severity is the score's rating.
	Severity Severity `json:"severity"`
}

// Summary counts a report's findings.
type Summary struct {
	// Total is the number of findings.
	Total int `json:"total"`
	// Critical, High, Medium, Low, None and Unknown count the findings of
	// each severity; they add up to Total.
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	None     int `json:"none"`
	Unknown  int `json:"unknown"`
	// Fixable counts the findings with a known fix.
	Fixable int `json:"fixable"`
}

// Count returns the number of findings of severity s.
func (s Summary) Count(sev Severity) int {
	switch sev {
	case SeverityCritical:
		return s.Critical
	case SeverityHigh:
		return s.High
	case SeverityMedium:
		return s.Medium
	case SeverityLow:
		return s.Low
	case SeverityNone:
		return s.None
	}
	return s.Unknown
}

// AtLeast returns the number of findings of severity s or higher.
// SeverityUnknown findings count only when s is SeverityUnknown.
func (s Summary) AtLeast(sev Severity) int {
	if sev == SeverityUnknown {
		return s.Total
	}
	n := 0
	for x := sev; x <= SeverityCritical; x++ {
		n += s.Count(x)
	}
	return n
}

// Finalize scores every rating from its vector with cvss.Highest, drops
// ratings whose vector does not parse (their sources are listed in the
// returned error, which is informational: the report is still complete),
// sets each finding's Score, Severity, SeveritySource and Fixable, sorts
// and de-duplicates aliases and references, sorts the findings, sets
// Schema and computes Summary. It is idempotent.
func (r *Report) Finalize() error {
	r.Schema = ReportSchema
	if r.Vulnerabilities == nil {
		r.Vulnerabilities = []Vulnerability{}
	}
	var bad []string
	for i := range r.Vulnerabilities {
		v := &r.Vulnerabilities[i]
		v.Aliases = sortedSet(v.Aliases, v.ID)
		v.References = sortedSet(v.References, "")
		v.Fixable = v.FixedVersion != ""
		if len(v.Ratings) == 0 {
			continue
		}
		in := make([]cvss.Rating, 0, len(v.Ratings))
		for _, rt := range v.Ratings {
			vec, err := cvss.Parse(rt.Vector)
			if err != nil || rt.Source == "" {
				bad = append(bad, v.ID+" ("+rt.Source+")")
				continue
			}
			in = append(in, cvss.Rating{Source: rt.Source, Vector: vec})
		}
		v.Ratings = v.Ratings[:0]
		res, err := cvss.Highest(in...)
		if err != nil {
			v.Ratings = nil
			continue
		}
		for _, s := range res.Ratings {
			v.Ratings = append(v.Ratings, Rating{
				Source:   s.Source,
				Vector:   s.Vector.String(),
				Version:  s.Vector.Version().String(),
				Score:    s.Score,
				Severity: FromCVSS(s.Severity),
			})
		}
		v.Score = res.Score
		v.Severity = FromCVSS(res.Severity)
		v.SeveritySource = res.Source
	}
	slices.SortFunc(r.Vulnerabilities, compareVuln)
	r.Vulnerabilities = slices.CompactFunc(r.Vulnerabilities, func(a, b Vulnerability) bool {
		return compareVuln(a, b) == 0 && a.ID == b.ID
	})
	r.Summary = Summary{}
	for _, v := range r.Vulnerabilities {
		r.Summary.Total++
		if v.Fixable {
			r.Summary.Fixable++
		}
		switch v.Severity {
		case SeverityCritical:
			r.Summary.Critical++
		case SeverityHigh:
			r.Summary.High++
		case SeverityMedium:
			r.Summary.Medium++
		case SeverityLow:
			r.Summary.Low++
		case SeverityNone:
			r.Summary.None++
		default:
			r.Summary.Unknown++
		}
	}
	if len(bad) > 0 {
		return errors.New("scan: ignored unparsable CVSS vectors of " + strings.Join(bad, ", "))
	}
	return nil
}

func compareVuln(a, b Vulnerability) int {
	if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Version, b.Package.Version); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.PURL, b.Package.PURL); c != 0 {
		return c
	}
	return strings.Compare(a.Package.Location, b.Package.Location)
}

func sortedSet(s []string, drop string) []string {
	out := s[:0:0]
	for _, x := range s {
		if x != "" && x != drop {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b := []byte{'"'}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			b = append(b, '?')
			continue
		}
		b = append(b, string(r)...)
	}
	return string(append(b, '"'))
}
