// Package cvss parses and scores Common Vulnerability Scoring System
// vectors of versions 2.0, 3.0, 3.1 and 4.0, and picks the highest of
// several sources' ratings of one vulnerability.
//
//	v, err := cvss.Parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
//	if err != nil {
//		return err
//	}
//	fmt.Println(v.Score(), v.Severity()) // 9.8 Critical
//
// [Parse] detects the version from the prefix ("CVSS:3.0/", "CVSS:3.1/",
// "CVSS:4.0/"; none for v2) and returns a [Vector], a small comparable
// value. Parsing and scoring do not allocate.
//
// # Scores
//
// Scores follow the FIRST specifications exactly:
//
//   - v2: the equations of section 3.2 of the v2 guide, with
//     round_to_1_decimal rounding halves up. v2 scores are clamped at 0:
//     the environmental equation can otherwise go slightly negative.
//   - v3.0 and v3.1: each version's own equations (they differ in the
//     Scope:Changed modified impact of the environmental score) and each
//     version's Roundup: v3.0 rounds up to one decimal, v3.1 uses the
//     integer-based Roundup of Appendix A.
//   - v4.0: the MacroVector lookup table, max-composed vectors, max
//     severities and the interpolation of the FIRST reference calculator
//     (cvss_score.js), rounding halves up.
//
// Wherever a formula only involves decimal weights the value is computed
// exactly with integers, so that ties such as 2.85 round up as the
// specifications say rather than down as float64 arithmetic would (3.0 ×
// 0.95 is 2.8499999999999996 in float64). The remaining float64
// computations (the 15th and 13th powers of the v3 Scope:Changed impact)
// are proven by the tests never to fall close enough to a rounding
// boundary to matter.
//
// [Vector.Score] is the most specific score: the environmental score for
// v2 and v3, and for v4.0 the score over all metrics present, whose
// nomenclature (CVSS-B, CVSS-BT, CVSS-BE, CVSS-BTE) [Vector.Nomenclature]
// reports. With no temporal or environmental metric set, every v2/v3
// score equals the base score. One deliberate choice: a v2 or v3 vector
// without environmental metrics gets its temporal score as environmental
// score, although the v2 and v3.1 environmental formulas taken literally
// give a few vectors 0.1 more or less (see [Vector.EnvironmentalScore]).
//
// # Vector strings
//
// [Vector.String] writes the canonical form: the version prefix, then the
// defined metrics in the order of the specification's table. Optional
// metrics that are not defined (X, or ND in v2) are omitted, since they
// are the same as absent ones; Parse(v.String()) == v for every Vector v
// that Parse returned. v3 and v2 metrics may come in any order, v4.0
// metrics must follow the specification's order. CVSS v2 vectors are
// accepted only in the bare form that NVD and the v2 guide use
// ("AV:N/AC:L/Au:N/C:P/I:P/A:P"); the "(AV:...)" form and the unofficial
// "CVSS:2.0/" prefix are rejected with an explanatory error.
//
// # Aggregation
//
// A vulnerability is often rated by several sources (NVD, the vendor,
// GitHub advisories, ...). [Highest] recomputes every source's score from
// its vector, ranks them by score with a documented tie-break order, and
// reports the winner along with all ratings.
//
// # Errors
//
// Parse returns a *[ParseError] naming the vector, the metric at fault (if
// any) and the reason, for unknown, duplicate, missing or misplaced
// metrics, invalid values, and bad prefixes. Every such error matches
// [ErrInvalidVector] with errors.Is. Messages are lower-case and start
// with "cvss: ". [Highest] returns [ErrNoRatings] when called without
// ratings.
//
// # Concurrency
//
// Vector, Rating and Result are values without internal state; all
// functions and methods are safe for concurrent use. The package holds
// only immutable tables.
//
// # Security
//
// Vectors usually come from untrusted feeds. Parse works in time linear in
// its input, rejects inputs over 512 bytes, never panics (it is fuzzed),
// and quotes and truncates the input in error messages so that hostile
// vectors cannot inject control characters into logs. The package imports
// only the standard library.
package cvss
