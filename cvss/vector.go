package cvss

import (
	"strconv"
	"strings"
)

// Version identifies a CVSS version.
type Version uint8

// The supported CVSS versions. The zero Version means "no version" and is
// only reported by the zero [Vector]. Later versions compare greater than
// earlier ones.
const (
	V2   Version = iota + 1 // CVSS v2.0 (no vector prefix)
	V3_0                    // CVSS v3.0 ("CVSS:3.0/")
	V3_1                    // CVSS v3.1 ("CVSS:3.1/")
	V4_0                    // CVSS v4.0 ("CVSS:4.0/")
)

// String returns "2.0", "3.0", "3.1" or "4.0", and "" for the zero Version.
func (v Version) String() string {
	switch v {
	case V2:
		return "2.0"
	case V3_0:
		return "3.0"
	case V3_1:
		return "3.1"
	case V4_0:
		return "4.0"
	}
	return ""
}

// maxVectorLen bounds the input accepted by Parse. The longest canonical
// vector (v4.0 with every metric set) is well under 200 bytes.
const maxVectorLen = 512

// Vector is a parsed CVSS vector of any supported version.
//
// Vector is a small comparable value: two Vectors are == exactly when they
// have the same version and the same metric values. A metric given
// explicitly as "not defined" (X, or ND in v2) is the same as an omitted
// one. The zero Vector is not a valid vector: its Version is 0, its scores
// are 0 and its String is "".
type Vector struct {
	// lo and hi hold one 4-bit code per metric of the version's schema,
	// in schema order (metrics 0-15 in lo, 16-31 in hi): 0 means not
	// defined, otherwise 1 + the index of the value in the schema's value
	// list. Two words rather than an array keep Vector in registers.
	lo, hi uint64
	ver    Version
}

// at returns the code of metric i.
func (v *Vector) at(i int) uint8 {
	w := v.lo
	if i >= 16 {
		w = v.hi
	}
	return uint8(w>>(4*(i&15))) & 0xf
}

// set sets the code of metric i, which must be 0 beforehand.
func (v *Vector) set(i int, c uint8) {
	if i >= 16 {
		v.hi |= uint64(c) << (4 * (i & 15))
	} else {
		v.lo |= uint64(c) << (4 * (i & 15))
	}
}

// metric describes one metric of a version's vector string.
type metric struct {
	name     string
	values   []string // allowed values in specification order, "not defined" excluded
	required bool     // base metrics; the others may be omitted or "not defined"

	key  uint64   // pack(name)
	keys []uint64 // pack(values[i])
}

// pack maps a string of up to 7 bytes to a distinct non-zero integer (see
// packPart), so that names and values are compared as integers. Longer
// strings map to 0, which matches nothing.
func pack(s string) uint64 { return packPart(s) }

// withKeys fills the packed keys of a schema.
func withKeys(sc schema) schema {
	sc.ndKey = pack(sc.nd)
	ms := make([]metric, len(sc.metrics))
	copy(ms, sc.metrics)
	for i := range ms {
		ms[i].key = pack(ms[i].name)
		ms[i].keys = make([]uint64, len(ms[i].values))
		for j, v := range ms[i].values {
			ms[i].keys[j] = pack(v)
		}
	}
	sc.metrics = ms
	sc.parts = buildPartTable(&sc)
	sc.template = buildTemplate(&sc)
	return sc
}

// schema describes the vector-string grammar of one version.
type schema struct {
	prefix string // "CVSS:3.1/"; empty for v2
	nd     string // the "not defined" value: "X", or "ND" for v2
	ndKey  uint64 // pack(nd)

	parts    *partTable    // see fastparse.go
	template *baseTemplate // see fastparse.go
	required uint64        // bit i set when metrics[i] is required
	ordered  bool          // metrics must appear in schema order
	metrics  []metric
}

func schemaOf(v Version) *schema {
	switch v {
	case V2:
		return &schemaV2
	case V3_0:
		return &schemaV30
	case V3_1:
		return &schemaV31
	case V4_0:
		return &schemaV40
	}
	return nil
}

// Parse parses a CVSS vector string of version 2.0, 3.0, 3.1 or 4.0.
//
// The version is taken from the prefix: "CVSS:3.0/", "CVSS:3.1/" or
// "CVSS:4.0/"; a vector without prefix is CVSS v2.0, as written by NVD
// ("AV:N/AC:L/Au:N/C:P/I:P/A:P"). Parsing is strict and case-sensitive:
//
//   - every base metric must be present, each metric at most once;
//   - unknown metrics and values not defined by the specification are errors;
//   - optional metrics may be omitted or given as "not defined" (X; ND in v2),
//     which is the same thing;
//   - v4.0 metrics must appear in the order of the specification (as the
//     FIRST reference calculator requires); v3.x and v2 metrics may appear
//     in any order, as those specifications allow;
//   - v2 vectors are accepted only bare, as the v2 guide writes them: the
//     "(AV:N/...)" parenthesised form and the unofficial "CVSS:2.0/" prefix
//     are rejected, as are a trailing "/" and surrounding spaces.
//
// Errors are of type *[ParseError] and match [ErrInvalidVector]. Parse does
// not allocate when it succeeds.
func Parse(s string) (Vector, error) {
	var vec Vector
	if s == "" {
		return vec, &ParseError{Vector: s, Reason: "empty vector"}
	}
	if len(s) > maxVectorLen {
		return vec, &ParseError{Vector: s, Reason: "vector too long"}
	}
	if isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return vec, &ParseError{Vector: s, Reason: "leading or trailing white space"}
	}
	var sc *schema
	rest := s
	switch {
	case len(s) > 9 && s[:5] == "CVSS:" && s[8] == '/' && s[5:8] == "3.1":
		sc, vec.ver, rest = &schemaV31, V3_1, s[9:]
	case len(s) > 9 && s[:5] == "CVSS:" && s[8] == '/' && s[5:8] == "4.0":
		sc, vec.ver, rest = &schemaV40, V4_0, s[9:]
	case strings.HasPrefix(s, "CVSS:"):
		var p string
		if i := strings.IndexByte(s, '/'); i >= 0 {
			p, rest = s[:i+1], s[i+1:]
		} else {
			p, rest = s, ""
		}
		switch p {
		case schemaV31.prefix:
			sc, vec.ver = &schemaV31, V3_1
		case schemaV40.prefix:
			sc, vec.ver = &schemaV40, V4_0
		case schemaV30.prefix:
			sc, vec.ver = &schemaV30, V3_0
		case "CVSS:2.0/", "CVSS:2/":
			return Vector{}, &ParseError{Vector: s, Reason: "unsupported prefix " + quote(p) + " (CVSS v2 vectors have no prefix)"}
		default:
			return Vector{}, &ParseError{Vector: s, Reason: "unsupported version prefix " + quote(p)}
		}
		if rest == "" {
			return Vector{}, &ParseError{Vector: s, Reason: "no metrics after prefix"}
		}
	case len(s) >= 5 && strings.EqualFold(s[:5], "CVSS:"):
		return Vector{}, &ParseError{Vector: s, Reason: "unsupported prefix " + quote(s[:5]) + " (the prefix is upper-case \"CVSS:\")"}
	case s[0] == '(':
		return Vector{}, &ParseError{Vector: s, Reason: "parenthesised vector (write CVSS v2 vectors without parentheses)"}
	default:
		// No prefix: CVSS v2.0, whose vectors carry none.
		sc, vec.ver = &schemaV2, V2
	}

	if v, ok := parseFast(sc, rest); ok {
		v.ver = vec.ver
		return v, nil
	}
	return Vector{}, parseError(sc, s, len(s)-len(rest))
}

// parseError finds why the metrics of s, from offset start on, were
// rejected by parseFast and describes it. The two must accept exactly the
// same inputs (the fuzz test checks); should they ever disagree, the
// vector is rejected with a generic reason.
func parseError(sc *schema, s string, start int) *ParseError {
	rest := s[start:]
	var seen uint64
	next := 0 // schema index where the search for the next metric starts
	n := len(sc.metrics)
	for i := len(s) - len(rest); ; {
		// NAME up to ':', VALUE up to '/' or the end.
		j := i
		for j < len(s) && s[j] != ':' && s[j] != '/' {
			j++
		}
		if j == len(s) || s[j] == '/' || j == i {
			if j == i && (j == len(s) || s[j] == '/') {
				return &ParseError{Vector: s, Reason: "empty metric (stray \"/\")"}
			}
			return &ParseError{Vector: s, Metric: s[i:j], Reason: "malformed metric (expected NAME:VALUE)"}
		}
		k := j + 1
		for k < len(s) && s[k] != '/' {
			k++
		}
		name, val := s[i:j], s[j+1:k]

		// Find the metric, starting at the expected position: canonical
		// input is then matched in one comparison per metric.
		nk, idx, x := pack(name), -1, next
		if x == n {
			x = 0
		}
		for c := 0; c < n; c++ {
			if sc.metrics[x].key == nk {
				idx = x
				break
			}
			if x++; x == n {
				x = 0
			}
		}
		if idx < 0 {
			return &ParseError{Vector: s, Metric: name, Reason: "unknown metric"}
		}
		if seen&(1<<idx) != 0 {
			return &ParseError{Vector: s, Metric: name, Reason: "duplicate metric"}
		}
		if sc.ordered && idx < next {
			return &ParseError{Vector: s, Metric: name, Reason: "metric out of order (CVSS v4.0 requires the specification's order)"}
		}
		seen |= 1 << idx
		if next = idx + 1; next == n && !sc.ordered {
			next = 0
		}

		md := &sc.metrics[idx]
		vk, code := pack(val), uint8(0)
		for c, x := range md.keys {
			if x == vk {
				code = uint8(c + 1)
				break
			}
		}
		if code == 0 && (md.required || vk != sc.ndKey) {
			return &ParseError{Vector: s, Metric: name, Reason: "invalid value " + quote(val)}
		}
		if k == len(s) {
			break
		}
		if i = k + 1; i == len(s) {
			return &ParseError{Vector: s, Reason: "empty metric (stray \"/\")"}
		}
	}
	for k := range sc.metrics {
		if sc.metrics[k].required && seen&(1<<k) == 0 {
			return &ParseError{Vector: s, Metric: sc.metrics[k].name, Reason: "missing mandatory metric"}
		}
	}
	return &ParseError{Vector: s, Reason: "malformed vector"}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func quote(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return strconv.Quote(s)
}

// Version returns the CVSS version of v, or 0 for the zero Vector.
func (v Vector) Version() Version { return v.ver }

// IsZero reports whether v is the zero Vector.
func (v Vector) IsZero() bool { return v.ver == 0 }

// String returns the canonical vector string: the version prefix (none for
// v2), then every defined metric in the order of the specification's
// vector-string table. Optional metrics that are not defined (X, or ND in
// v2) are omitted. Parse(v.String()) returns v. The zero Vector yields "".
func (v Vector) String() string {
	var buf [256]byte
	return string(v.appendTo(buf[:0]))
}

func (v Vector) appendTo(b []byte) []byte {
	sc := schemaOf(v.ver)
	if sc == nil {
		return b
	}
	b = append(b, sc.prefix...)
	first := true
	for k := range sc.metrics {
		c := v.at(k)
		if c == 0 {
			continue
		}
		if !first {
			b = append(b, '/')
		}
		first = false
		md := &sc.metrics[k]
		b = append(b, md.name...)
		b = append(b, ':')
		b = append(b, md.values[c-1]...)
	}
	return b
}

// Metric returns the value of the named metric (for example "AV" or "MSI")
// as written in a vector string. It returns the version's "not defined"
// value (X, or ND for v2) for an optional metric that is not set, and ok ==
// false if the version has no such metric.
func (v Vector) Metric(name string) (value string, ok bool) {
	sc := schemaOf(v.ver)
	if sc == nil {
		return "", false
	}
	for k := range sc.metrics {
		if sc.metrics[k].name == name {
			if c := v.at(k); c != 0 {
				return sc.metrics[k].values[c-1], true
			}
			return sc.nd, true
		}
	}
	return "", false
}

// AppendText implements encoding.TextAppender; it appends v.String() to b.
func (v Vector) AppendText(b []byte) ([]byte, error) { return v.appendTo(b), nil }

// MarshalText implements encoding.TextMarshaler; it returns v.String(). The
// zero Vector encodes as an empty string.
func (v Vector) MarshalText() ([]byte, error) { return v.appendTo(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler using [Parse]. An empty
// text decodes to the zero Vector, mirroring MarshalText.
func (v *Vector) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*v = Vector{}
		return nil
	}
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
