package cvss

import (
	"errors"
	"math"
)

// Severity is a qualitative severity rating (section 5 of the CVSS v3.1
// and v4.0 specifications).
type Severity uint8

// Severity ratings, in increasing order.
const (
	None     Severity = iota // 0.0
	Low                      // 0.1 – 3.9
	Medium                   // 4.0 – 6.9
	High                     // 7.0 – 8.9
	Critical                 // 9.0 – 10.0
)

// String returns "None", "Low", "Medium", "High" or "Critical".
func (s Severity) String() string {
	switch s {
	case None:
		return "None"
	case Low:
		return "Low"
	case Medium:
		return "Medium"
	case High:
		return "High"
	case Critical:
		return "Critical"
	}
	return "Severity(" + string(rune('0'+s%10)) + ")"
}

// SeverityOf maps a score to its rating: None 0.0, Low 0.1–3.9, Medium
// 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0. The score is first rounded to
// one decimal, so 3.95 is Medium. Scores at or below zero and NaN are None;
// scores above 10 are Critical.
//
// CVSS v2 defines no qualitative scale; the same bands are used for it
// (NVD's historical v2 bands, Low 0–3.9, Medium 4–6.9, High 7–10, differ).
func SeverityOf(score float64) Severity {
	if !(score > 0) { // also NaN
		return None
	}
	if score > 10 {
		return Critical
	}
	return severityOfTenths(int64(math.Floor(score*10 + 0.5)))
}

func severityOfTenths(t int64) Severity {
	switch {
	case t <= 0:
		return None
	case t < 40:
		return Low
	case t < 70:
		return Medium
	case t < 90:
		return High
	}
	return Critical
}

// MarshalText implements encoding.TextMarshaler: the rating's name, so that
// JSON carries "High" rather than 3.
func (s Severity) MarshalText() ([]byte, error) {
	if s > Critical {
		return nil, errors.New("cvss: invalid severity " + s.String())
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler for the names returned
// by String ("None", "Low", "Medium", "High", "Critical"), compared
// case-insensitively.
func (s *Severity) UnmarshalText(text []byte) error {
	for c := None; c <= Critical; c++ {
		if equalFoldASCII(string(text), c.String()) {
			*s = c
			return nil
		}
	}
	return errors.New("cvss: invalid severity " + quote(string(text)))
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
