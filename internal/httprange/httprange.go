// Package httprange parses the byte ranges of HTTP requests that the
// registry serves and accepts: the Range header of blob GETs (RFC 9110
// §14.2) and the Content-Range header of upload chunks (the OCI
// distribution specification's "<start>-<end>" form).
//
// Only single ranges are supported; a multi-range request is reported as
// such so the caller can answer with the whole content, as RFC 9110 allows.
package httprange

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsatisfiable reports a syntactically valid range that lies outside
// the content (HTTP 416).
var ErrUnsatisfiable = errors.New("httprange: range not satisfiable")

// ErrMultiple reports a Range header with more than one range.
var ErrMultiple = errors.New("httprange: multiple ranges are not supported")

// SyntaxError reports a malformed header.
type SyntaxError struct {
	Header string
	Reason string
}

func (e *SyntaxError) Error() string {
	h := e.Header
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return fmt.Sprintf("httprange: malformed range %q: %s", h, e.Reason)
}

// Range is the byte range [Start, Start+Length).
type Range struct {
	Start, Length int64
}

// End returns the last byte's offset (inclusive), as Content-Range writes it.
func (r Range) End() int64 { return r.Start + r.Length - 1 }

// ContentRange formats the response's Content-Range header for content of
// size bytes.
func (r Range) ContentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End(), 10) + "/" + strconv.FormatInt(size, 10)
}

// Parse parses a Range header value for content of size bytes. It accepts
// "bytes=a-b", "bytes=a-" and "bytes=-n" (the last n bytes), clamps an end
// past the content to its last byte, and returns ErrUnsatisfiable when the
// range starts at or after the end (or asks for the last 0 bytes), a
// *SyntaxError when malformed and ErrMultiple for several ranges.
func Parse(header string, size int64) (Range, error) {
	bad := func(reason string) (Range, error) { return Range{}, &SyntaxError{Header: header, Reason: reason} }
	unit, spec, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return bad(`want "bytes=<start>-<end>"`)
	}
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ",") {
		return Range{}, ErrMultiple
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return bad("missing '-'")
	}
	if first == "" {
		n, err := parseNum(last)
		if err != nil {
			return bad("invalid suffix length")
		}
		if n == 0 || size == 0 {
			return Range{}, ErrUnsatisfiable
		}
		n = min(n, size)
		return Range{Start: size - n, Length: n}, nil
	}
	start, err := parseNum(first)
	if err != nil {
		return bad("invalid start")
	}
	end := size - 1
	if last != "" {
		if end, err = parseNum(last); err != nil {
			return bad("invalid end")
		}
		if end < start {
			return bad("end before start")
		}
		end = min(end, size-1)
	}
	if start >= size {
		return Range{}, ErrUnsatisfiable
	}
	return Range{Start: start, Length: end - start + 1}, nil
}

// ParseContentRange parses the Content-Range header of an upload chunk:
// "<start>-<end>" with inclusive offsets, optionally prefixed with "bytes "
// or "bytes=" and suffixed with "/<total>" or "/*", as clients send it.
func ParseContentRange(header string) (Range, error) {
	bad := func(reason string) (Range, error) { return Range{}, &SyntaxError{Header: header, Reason: reason} }
	s := strings.TrimSpace(header)
	if rest, ok := strings.CutPrefix(s, "bytes"); ok {
		s = strings.TrimLeft(rest, " =")
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		if total := s[i+1:]; total != "*" {
			if _, err := parseNum(total); err != nil {
				return bad("invalid total length")
			}
		}
		s = s[:i]
	}
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return bad(`want "<start>-<end>"`)
	}
	start, err := parseNum(first)
	if err != nil {
		return bad("invalid start")
	}
	end, err := parseNum(last)
	if err != nil {
		return bad("invalid end")
	}
	if end < start {
		return bad("end before start")
	}
	if end == 1<<63-1 {
		return bad("end too large")
	}
	return Range{Start: start, Length: end - start + 1}, nil
}

// parseNum parses a non-negative decimal without sign or spaces.
func parseNum(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errors.New("bad number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
