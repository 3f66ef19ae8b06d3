// Package sarif encodes a scan.Report as a SARIF 2.1.0 log
// (https://docs.oasis-open.org/sarif/sarif/v2.1.0/), the format code
// scanning services (GitHub code scanning, GitLab, Azure DevOps) import.
//
// Each distinct vulnerability ID becomes a rule carrying the
// "security-severity" property (the CVSS score as a decimal string, or a
// score standing for the vendor severity when no vector was given: 9.0
// Critical, 7.0 High, 4.0 Medium, 0.1 Low) that those services use to
// rank alerts, and each finding a result with level "error" (Critical,
// High), "warning" (Medium) or "note" (others), located at the file the
// package was found in. Output is deterministic for a finalized report.
//
// # Concurrency
//
// Encode is safe for concurrent use.
package sarif

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/scan"
)

// SchemaURI is the $schema of the logs Encode writes.
const SchemaURI = "https://json.schemastore.org/sarif-2.1.0.json"

// Log is a SARIF log, limited to what Encode writes.
type Log struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []Run  `json:"runs"`
}

// Run is one tool run.
type Run struct {
	Tool    Tool     `json:"tool"`
	Results []Result `json:"results"`
	// Properties carry the image digest, scan status and data version.
	Properties map[string]any `json:"properties,omitempty"`
}

// Tool names the scanner.
type Tool struct {
	Driver Driver `json:"driver"`
}

// Driver is the tool's driver component with its rules.
type Driver struct {
	Name           string `json:"name"`
	Version        string `json:"version,omitempty"`
	InformationURI string `json:"informationUri,omitempty"`
	Rules          []Rule `json:"rules"`
}

// Rule describes one vulnerability.
type Rule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     Message        `json:"shortDescription"`
	FullDescription      *Message       `json:"fullDescription,omitempty"`
	HelpURI              string         `json:"helpUri,omitempty"`
	Help                 *Message       `json:"help,omitempty"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration,omitempty"`
	Properties           map[string]any `json:"properties,omitempty"`
}

// Message is a SARIF message.
type Message struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

// Result is one finding.
type Result struct {
	RuleID     string         `json:"ruleId"`
	RuleIndex  int            `json:"ruleIndex"`
	Level      string         `json:"level"`
	Message    Message        `json:"message"`
	Locations  []Location     `json:"locations,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Location is where a package was found.
type Location struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
	} `json:"physicalLocation"`
}

// Level returns the SARIF level of a severity.
func Level(s scan.Severity) string {
	switch s {
	case scan.SeverityCritical, scan.SeverityHigh:
		return "error"
	case scan.SeverityMedium:
		return "warning"
	}
	return "note"
}

// SecuritySeverity returns the "security-severity" property of a
// finding: its score, or a stand-in for its severity when it has none.
func SecuritySeverity(v scan.Vulnerability) string {
	s := v.Score
	if s == 0 {
		s = map[scan.Severity]float64{scan.SeverityCritical: 9, scan.SeverityHigh: 7, scan.SeverityMedium: 4, scan.SeverityLow: 0.1}[v.Severity]
	}
	return strconv.FormatFloat(s, 'f', 1, 64)
}

// Convert builds the SARIF log of r.
func Convert(r *scan.Report) *Log {
	run := Run{
		Tool: Tool{Driver: Driver{Name: r.Scanner.Name, Version: r.Scanner.Version,
			InformationURI: "https://github.com/berth-dev/berth", Rules: []Rule{}}},
		Results: []Result{},
		Properties: map[string]any{
			"imageDigest": r.Digest, "status": string(r.Status), "dbVersion": r.DBVersion,
		},
	}
	if run.Tool.Driver.Name == "" {
		run.Tool.Driver.Name = "berth"
	}
	index := map[string]int{}
	for _, v := range r.Vulnerabilities {
		i, ok := index[v.ID]
		if !ok {
			i = len(run.Tool.Driver.Rules)
			index[v.ID] = i
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule(v))
		}
		res := Result{
			RuleID:    v.ID,
			RuleIndex: i,
			Level:     Level(v.Severity),
			Message:   Message{Text: message(v)},
			Properties: map[string]any{
				"package": v.Package.Name, "installedVersion": v.Package.Version,
				"fixedVersion": v.FixedVersion, "purl": v.Package.PURL, "severity": v.Severity.String(),
			},
		}
		if loc := strings.TrimPrefix(v.Package.Location, "/"); loc != "" {
			var l Location
			l.PhysicalLocation.ArtifactLocation.URI = loc
			res.Locations = []Location{l}
		}
		run.Results = append(run.Results, res)
	}
	return &Log{Schema: SchemaURI, Version: "2.1.0", Runs: []Run{run}}
}

func rule(v scan.Vulnerability) Rule {
	short := v.Description
	if i := strings.IndexAny(short, "\n"); i >= 0 {
		short = short[:i]
	}
	if len(short) > 200 {
		short = short[:200] + "…"
	}
	if short == "" {
		short = v.ID
	}
	rl := Rule{
		ID:                   v.ID,
		Name:                 v.ID,
		ShortDescription:     Message{Text: short},
		DefaultConfiguration: map[string]any{"level": Level(v.Severity)},
		Properties: map[string]any{
			"security-severity": SecuritySeverity(v),
			"tags":              []string{"security", "vulnerability", strings.ToUpper(v.Severity.String())},
			"precision":         "very-high",
		},
	}
	if v.Description != "" {
		rl.FullDescription = &Message{Text: v.Description}
	}
	if len(v.References) > 0 {
		rl.HelpURI = v.References[0]
	}
	var md strings.Builder
	fmt.Fprintf(&md, "**%s** (%s", v.ID, v.Severity)
	if v.Score > 0 {
		fmt.Fprintf(&md, ", CVSS %.1f", v.Score)
	}
	md.WriteString(")\n\n")
	if len(v.Aliases) > 0 {
		fmt.Fprintf(&md, "Aliases: %s\n\n", strings.Join(v.Aliases, ", "))
	}
	for _, ref := range v.References {
		fmt.Fprintf(&md, "- <%s>\n", ref)
	}
	rl.Help = &Message{Text: message(v), Markdown: md.String()}
	return rl
}

func message(v scan.Vulnerability) string {
	s := fmt.Sprintf("%s %s is affected by %s (%s)", v.Package.Name, v.Package.Version, v.ID, v.Severity)
	if v.Fixable {
		return s + "; fixed in " + v.FixedVersion
	}
	return s + "; no fix available"
}

// Encode writes the SARIF log of r to w as indented JSON.
func Encode(w io.Writer, r *scan.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Convert(r))
}
