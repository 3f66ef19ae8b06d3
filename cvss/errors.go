package cvss

import (
	"errors"
	"strconv"
)

// ErrInvalidVector is matched by errors.Is for every error returned by
// [Parse] and [Vector.UnmarshalText].
var ErrInvalidVector = errors.New("cvss: invalid vector")

// ErrNoRatings is returned by [Highest] when it is called without ratings.
var ErrNoRatings = errors.New("cvss: no ratings")

// maxErrorVector bounds how much of a rejected vector is quoted in an error
// message; the full input stays available in ParseError.Vector.
const maxErrorVector = 96

// ParseError describes why a vector string was rejected.
//
// Metric names the offending metric (for example "AV") when the problem is
// tied to one metric; it is empty for problems with the vector as a whole
// (empty input, unknown prefix, overlong input).
type ParseError struct {
	// Vector is the input as given to Parse.
	Vector string
	// Metric is the abbreviated metric name, or "" if the error concerns
	// the whole vector.
	Metric string
	// Reason is a short lower-case description such as "unknown metric",
	// "duplicate metric", "missing mandatory metric" or
	// `invalid value "Q"`.
	Reason string
}

// Error returns a lower-case message prefixed with "cvss: ". Long vectors are
// truncated in the message.
func (e *ParseError) Error() string {
	v := e.Vector
	if len(v) > maxErrorVector {
		v = v[:maxErrorVector] + "..."
	}
	msg := "cvss: invalid vector " + strconv.Quote(v) + ": "
	if e.Metric != "" {
		msg += "metric " + strconv.Quote(e.Metric) + ": "
	}
	return msg + e.Reason
}

// Is reports whether target is [ErrInvalidVector].
func (e *ParseError) Is(target error) bool { return target == ErrInvalidVector }
