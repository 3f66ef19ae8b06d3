package cvss

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Well-known rating sources, for [Rating.Source]. Any other non-empty
// string is a valid source too (for example a vendor or CNA name).
const (
	SourceNVD  = "nvd"  // NIST National Vulnerability Database
	SourceGHSA = "ghsa" // GitHub Security Advisories
	SourceOSV  = "osv"  // OSV.dev
)

// sourcePrecedence lists the well-known sources in the order used to break
// ties in Highest; sources not listed come after them.
var sourcePrecedence = [...]string{SourceNVD, SourceGHSA, SourceOSV}

// Rating is one source's CVSS vector for a vulnerability.
type Rating struct {
	// Source names who rated the vulnerability, for example SourceNVD or a
	// vendor name. Compared case-insensitively.
	Source string
	// Vector is the source's vector; it must not be the zero Vector.
	Vector Vector
}

// Scored is a Rating with the score and severity computed from its vector.
type Scored struct {
	Rating
	// Score is Vector.Score().
	Score float64
	// Severity is Vector.Severity().
	Severity Severity
}

// Result is the outcome of [Highest].
type Result struct {
	// Scored is the winning rating: its source, vector, score and
	// severity.
	Scored
	// Ratings holds every rating passed to Highest, scored, in rank
	// order: the winner first.
	Ratings []Scored
}

// Highest scores every rating itself, from its vector (scores claimed by
// a source are never trusted), and returns the highest one, together with
// all ratings in rank order.
//
// Ratings are ranked by:
//
//  1. higher [Vector.Score] (for v4.0 the score over all metrics present;
//     for v2 and v3 the environmental score);
//  2. newer CVSS version (4.0, then 3.1, 3.0, 2.0);
//  3. source precedence: SourceNVD, SourceGHSA, SourceOSV, then any other
//     source, compared case-insensitively;
//  4. source name, case-insensitively in byte order, then as given;
//  5. the order of the arguments.
//
// The ranking is therefore deterministic for any input order apart from
// exact duplicates. Highest returns [ErrNoRatings] when called with no
// ratings, and an error naming the source when a rating has the zero
// Vector or an empty Source.
func Highest(ratings ...Rating) (Result, error) {
	if len(ratings) == 0 {
		return Result{}, ErrNoRatings
	}
	all := make([]Scored, len(ratings))
	for i, r := range ratings {
		if r.Source == "" {
			return Result{}, errors.New("cvss: rating " + strconv.Itoa(i) + " has no source")
		}
		if r.Vector.IsZero() {
			return Result{}, errors.New("cvss: rating from " + quote(r.Source) + " has no vector")
		}
		t := r.Vector.scoreTenths()
		all[i] = Scored{Rating: r, Score: tenthsToFloat(t), Severity: severityOfTenths(t)}
	}
	slices.SortStableFunc(all, compareScored)
	return Result{Scored: all[0], Ratings: all}, nil
}

// compareScored orders a before b when a ranks higher.
func compareScored(a, b Scored) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Vector.ver, a.Vector.ver); c != 0 {
		return c
	}
	if c := cmp.Compare(precedence(a.Source), precedence(b.Source)); c != 0 {
		return c
	}
	if c := cmp.Compare(strings.ToLower(a.Source), strings.ToLower(b.Source)); c != 0 {
		return c
	}
	return strings.Compare(a.Source, b.Source)
}

func precedence(source string) int {
	for i, s := range sourcePrecedence {
		if strings.EqualFold(s, source) {
			return i
		}
	}
	return len(sourcePrecedence)
}
