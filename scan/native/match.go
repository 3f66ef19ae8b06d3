package native

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/berth-dev/berth/cvss"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/native/internal/version"
)

const maxDescription = 2000

// match returns the findings for pkgs.
func match(db *DB, pkgs []scan.Package) []scan.Vulnerability {
	var out []scan.Vulnerability
	var hits []hit
	for _, p := range pkgs {
		if p.Ecosystem == "" {
			continue
		}
		name, ver := p.Name, p.Version
		if k := ecosystemKind(p.Ecosystem); k == "deb" || k == "apk" {
			// Debian's and Alpine's advisories name source packages
			// (RPM distributions' name binary packages).
			if p.SourceName != "" {
				name = p.SourceName
			}
			if p.SourceVersion != "" {
				ver = p.SourceVersion
			}
		}
		cmp := version.ComparerFor(p.Ecosystem)
		hits = hits[:0]
		for _, e := range db.lookup(p.Ecosystem, name) {
			if ok, fixed := affected(cmp, ver, &e.adv.Affected[e.aff]); ok {
				hits = append(hits, hit{e: e, fixed: fixed})
			}
		}
		// Order hits by record, so that the result does not depend on the
		// order in which files were loaded.
		slices.SortFunc(hits, func(a, b hit) int {
			if c := strings.Compare(a.e.adv.ID, b.e.adv.ID); c != 0 {
				return c
			}
			return a.e.aff - b.e.aff
		})
		for _, g := range groupHits(hits) {
			out = append(out, finding(p, g, cmp))
		}
	}
	return out
}

type hit struct {
	e     entry
	fixed string
}

// affected evaluates an OSV affected entry for version v as the OSV
// schema's pseudo-code does, and returns the lowest fixed version above v
// from the range that matched.
func affected(cmp func(a, b string) int, v string, a *Affected) (bool, string) {
	listed := slices.ContainsFunc(a.Versions, func(x string) bool { return cmp(x, v) == 0 })
	for _, r := range a.Ranges {
		c := cmp
		switch r.Type {
		case "SEMVER":
			c = version.Semver
		case "ECOSYSTEM":
		default:
			continue
		}
		if ok, fixed := inRange(c, v, r.Events); ok {
			return true, fixed
		}
	}
	return listed, ""
}

func inRange(cmp func(a, b string) int, v string, events []Event) (bool, string) {
	evs := slices.Clone(events)
	key := func(e Event) string { return e.Introduced + e.Fixed + e.LastAffected + e.Limit }
	slices.SortStableFunc(evs, func(a, b Event) int {
		ka, kb := key(a), key(b)
		if a.Introduced == "0" && b.Introduced != "0" {
			return -1
		}
		if b.Introduced == "0" && a.Introduced != "0" {
			return 1
		}
		return cmp(ka, kb)
	})
	aff := false
	fixed := ""
	for _, e := range evs {
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" || cmp(v, e.Introduced) >= 0 {
				aff = true
			}
		case e.Fixed != "":
			if cmp(v, e.Fixed) >= 0 {
				aff = false
			} else if fixed == "" && aff {
				fixed = e.Fixed
			}
		case e.LastAffected != "":
			if cmp(v, e.LastAffected) > 0 {
				aff = false
			}
		}
	}
	if !aff {
		return false, ""
	}
	return true, fixed
}

// groupHits merges advisories about the same vulnerability (sharing an ID
// or alias), such as a GO- record and its GHSA- twin.
func groupHits(hits []hit) [][]hit {
	var groups [][]hit
	var keys []map[string]bool
	for _, h := range hits {
		ids := idsOf(h.e.adv)
		gi := -1
		for i, k := range keys {
			for _, id := range ids {
				if k[id] {
					gi = i
					break
				}
			}
			if gi >= 0 {
				break
			}
		}
		if gi < 0 {
			groups = append(groups, nil)
			keys = append(keys, map[string]bool{})
			gi = len(groups) - 1
		}
		groups[gi] = append(groups[gi], h)
		for _, id := range ids {
			keys[gi][id] = true
		}
	}
	return groups
}

func idsOf(a *Advisory) []string {
	ids := append([]string{a.ID}, a.Aliases...)
	return append(ids, a.Upstream...)
}

// finding builds one Vulnerability from a group of advisories.
func finding(p scan.Package, g []hit, cmp func(a, b string) int) scan.Vulnerability {
	var ids []string
	for _, h := range g {
		ids = append(ids, idsOf(h.e.adv)...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	primary := ""
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			primary = id
			break
		}
	}
	if primary == "" {
		recIDs := make([]string, 0, len(g))
		for _, h := range g {
			recIDs = append(recIDs, h.e.adv.ID)
		}
		primary = slices.Min(recIDs)
	}
	v := scan.Vulnerability{ID: primary, Aliases: ids, Package: p, Severity: scan.SeverityUnknown}
	seenRating := map[scan.Rating]bool{}
	for _, h := range g {
		a := h.e.adv
		if h.fixed != "" && (v.FixedVersion == "" || cmp(h.fixed, v.FixedVersion) < 0) {
			v.FixedVersion = h.fixed
		}
		if v.Description == "" {
			v.Description = a.Summary
			if v.Description == "" {
				v.Description = a.Details
			}
			v.Description = truncate(v.Description, maxDescription)
		}
		for _, ref := range a.References {
			if strings.HasPrefix(ref.URL, "https://") || strings.HasPrefix(ref.URL, "http://") {
				v.References = append(v.References, ref.URL)
			}
		}
		src := sourceOf(a.ID)
		for _, s := range slices.Concat(a.Severity, a.Affected[h.e.aff].Severity) {
			if !strings.HasPrefix(s.Type, "CVSS_") {
				continue
			}
			r := scan.Rating{Source: src, Vector: s.Score}
			if !seenRating[r] {
				seenRating[r] = true
				v.Ratings = append(v.Ratings, r)
			}
		}
		if sev := vendorSeverity(a.DatabaseSpecific); sev > v.Severity {
			v.Severity, v.SeveritySource = sev, src
		}
	}
	return v
}

// sourceOf names the rating source of a record from its ID prefix:
// "CVE-…" → cvss.SourceNVD, "GHSA-…" → cvss.SourceGHSA, otherwise the
// prefix in lower case ("go", "debian", "alpine", "pysec", …).
func sourceOf(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	switch p := strings.ToLower(prefix); p {
	case "cve":
		return cvss.SourceNVD
	case "ghsa":
		return cvss.SourceGHSA
	case "dsa", "dla", "dtsa":
		return "debian"
	case "":
		return cvss.SourceOSV
	default:
		return p
	}
}

// vendorSeverity reads database_specific.severity ("HIGH", "MODERATE",
// …), as GitHub advisories carry it.
func vendorSeverity(raw json.RawMessage) scan.Severity {
	if len(raw) == 0 {
		return scan.SeverityUnknown
	}
	var ds struct {
		Severity string `json:"severity"`
	}
	if json.Unmarshal(raw, &ds) != nil {
		return scan.SeverityUnknown
	}
	s, err := scan.ParseSeverity(ds.Severity)
	if err != nil {
		return scan.SeverityUnknown
	}
	return s
}
