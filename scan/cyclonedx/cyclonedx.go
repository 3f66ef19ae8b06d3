// Package cyclonedx encodes a scan.Report as a CycloneDX 1.6 JSON BOM
// with a vulnerabilities section — a VEX document
// (https://cyclonedx.org/capabilities/vex/) — listing the image as
// metadata.component, every affected package as a component identified
// by its purl, and every vulnerability with its ratings (CVSS method,
// vector, score and severity), its aliases as references, advisories,
// affected package versions and an analysis.
//
// The analysis state is "in_triage" (a scanner establishes that a
// vulnerable version is present, not that it is exploitable), with
// response "update" when a fix exists; the recommendation names the
// fixed version. Callers that know better (after triage) may edit the
// Document before encoding it.
//
// Output is deterministic for a finalized report: the serial number is a
// UUID derived from the image digest and scan time.
//
// # Concurrency
//
// Encode is safe for concurrent use.
package cyclonedx

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/scan"
)

// SpecVersion is the CycloneDX version written.
const SpecVersion = "1.6"

// Document is a CycloneDX BOM, limited to what Encode writes.
type Document struct {
	BOMFormat       string          `json:"bomFormat"`
	SpecVersion     string          `json:"specVersion"`
	SerialNumber    string          `json:"serialNumber"`
	Version         int             `json:"version"`
	Metadata        Metadata        `json:"metadata"`
	Components      []Component     `json:"components"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
}

// Metadata describes the BOM's subject and author tool.
type Metadata struct {
	Timestamp string `json:"timestamp,omitempty"`
	Tools     struct {
		Components []Component `json:"components"`
	} `json:"tools"`
	Component *Component `json:"component,omitempty"`
}

// Component is a software component.
type Component struct {
	Type    string `json:"type"`
	BOMRef  string `json:"bom-ref,omitempty"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	PURL    string `json:"purl,omitempty"`
}

// Vulnerability is one vulnerability and the components it affects.
type Vulnerability struct {
	BOMRef         string      `json:"bom-ref"`
	ID             string      `json:"id"`
	Source         *Source     `json:"source,omitempty"`
	References     []Reference `json:"references,omitempty"`
	Ratings        []Rating    `json:"ratings,omitempty"`
	Description    string      `json:"description,omitempty"`
	Recommendation string      `json:"recommendation,omitempty"`
	Advisories     []Advisory  `json:"advisories,omitempty"`
	Analysis       Analysis    `json:"analysis"`
	Affects        []Affect    `json:"affects"`
}

// Source names a vulnerability database.
type Source struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// Reference is an alias of the vulnerability.
type Reference struct {
	ID     string `json:"id"`
	Source Source `json:"source"`
}

// Rating is one source's rating.
type Rating struct {
	Source   Source  `json:"source"`
	Score    float64 `json:"score"`
	Severity string  `json:"severity"`
	Method   string  `json:"method"`
	Vector   string  `json:"vector"`
}

// Advisory is a link to an advisory.
type Advisory struct {
	URL string `json:"url"`
}

// Analysis is the VEX analysis.
type Analysis struct {
	State    string   `json:"state"`
	Response []string `json:"response,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// Affect names an affected component and version.
type Affect struct {
	Ref      string          `json:"ref"`
	Versions []AffectVersion `json:"versions"`
}

// AffectVersion is an affected version.
type AffectVersion struct {
	Version string `json:"version"`
	Status  string `json:"status"`
}

// Convert builds the CycloneDX document of r.
func Convert(r *scan.Report) *Document {
	d := &Document{BOMFormat: "CycloneDX", SpecVersion: SpecVersion, Version: 1,
		SerialNumber: serial(r), Components: []Component{}, Vulnerabilities: []Vulnerability{}}
	if !r.LastScanned.IsZero() {
		d.Metadata.Timestamp = r.LastScanned.UTC().Format(time.RFC3339)
	}
	d.Metadata.Tools.Components = []Component{{Type: "application", Name: r.Scanner.Name, Version: r.Scanner.Version}}
	if r.Digest != "" {
		d.Metadata.Component = &Component{Type: "container", BOMRef: r.Digest, Name: r.Digest}
	}
	comps := map[string]bool{}
	vulns := map[string]int{}
	for _, v := range r.Vulnerabilities {
		ref := componentRef(v.Package)
		if !comps[ref] {
			comps[ref] = true
			d.Components = append(d.Components, Component{Type: "library", BOMRef: ref, Name: v.Package.Name, Version: v.Package.Version, PURL: v.Package.PURL})
		}
		i, ok := vulns[v.ID]
		if !ok {
			i = len(d.Vulnerabilities)
			vulns[v.ID] = i
			d.Vulnerabilities = append(d.Vulnerabilities, vulnerability(v))
		}
		x := &d.Vulnerabilities[i]
		x.Affects = append(x.Affects, Affect{Ref: ref, Versions: []AffectVersion{{Version: v.Package.Version, Status: "affected"}}})
		if v.Fixable {
			rec := v.Package.Name + ": upgrade to " + v.FixedVersion
			if x.Recommendation == "" {
				x.Recommendation = rec
			} else if !strings.Contains(x.Recommendation, rec) {
				x.Recommendation += "; " + rec
			}
			x.Analysis.Response = []string{"update"}
		}
	}
	return d
}

func componentRef(p scan.Package) string {
	if p.PURL != "" {
		return p.PURL + "#" + p.Location
	}
	return "pkg:generic/" + p.Name + "@" + p.Version + "#" + p.Location
}

func vulnerability(v scan.Vulnerability) Vulnerability {
	x := Vulnerability{BOMRef: "vuln:" + v.ID, ID: v.ID, Description: v.Description, Analysis: Analysis{State: "in_triage"}}
	x.Source = sourceOf(v.ID)
	for _, a := range v.Aliases {
		x.References = append(x.References, Reference{ID: a, Source: *sourceOf(a)})
	}
	for _, rt := range v.Ratings {
		x.Ratings = append(x.Ratings, Rating{Source: Source{Name: rt.Source}, Score: rt.Score,
			Severity: strings.ToLower(rt.Severity.String()), Method: method(rt.Version), Vector: rt.Vector})
	}
	if len(v.Ratings) == 0 {
		x.Ratings = []Rating{{Source: Source{Name: "vendor"}, Severity: strings.ToLower(v.Severity.String()), Method: "other"}}
	}
	for _, ref := range v.References {
		x.Advisories = append(x.Advisories, Advisory{URL: ref})
	}
	return x
}

func method(version string) string {
	switch version {
	case "2.0":
		return "CVSSv2"
	case "3.0":
		return "CVSSv3"
	case "3.1":
		return "CVSSv31"
	case "4.0":
		return "CVSSv4"
	}
	return "other"
}

func sourceOf(id string) *Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return &Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return &Source{Name: "GitHub", URL: "https://github.com/advisories/" + id}
	}
	return &Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + id}
}

// serial derives a UUID URN from the digest and scan time.
func serial(r *scan.Report) string {
	h := sha256.Sum256([]byte(r.Digest + "\x00" + r.LastScanned.UTC().Format(time.RFC3339Nano) + "\x00" + r.Scanner.String()))
	h[6] = h[6]&0x0f | 0x50 // version 5 layout (name-based)
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Encode writes the CycloneDX document of r to w as indented JSON.
func Encode(w io.Writer, r *scan.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Convert(r))
}
