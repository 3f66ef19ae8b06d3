package httprange

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestParse runs testdata/range: "header size", then "----", then the
// expected result.
func TestParse(t *testing.T) {
	runScript(t, "testdata/range", func(input string) string {
		h, sizeStr, _ := strings.Cut(input, " | ")
		var size int64
		fmt.Sscan(sizeStr, &size)
		r, err := Parse(h, size)
		return result(r, err)
	})
}

func TestParseContentRange(t *testing.T) {
	runScript(t, "testdata/content-range", func(input string) string {
		r, err := ParseContentRange(input)
		return result(r, err)
	})
}

func result(r Range, err error) string {
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		return "syntax error: " + se.Reason
	case err != nil:
		return err.Error()
	}
	return fmt.Sprintf("start=%d length=%d", r.Start, r.Length)
}

// runScript reads cases separated by blank lines: input, "----", output.
func runScript(t *testing.T, path string, fn func(string) string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var input string
	var inOut bool
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#") || (l == "" && !inOut):
		case l == "----":
			inOut = true
		case inOut:
			if got := fn(input); got != l {
				t.Errorf("%s:%d: %q: got %q, want %q", path, line, input, got, l)
			}
			inOut = false
		default:
			input = l
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=5-", "bytes=1-2,3-4", "items=0-1", "bytes=9223372036854775807-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		r, err := Parse(h, size)
		if err != nil {
			return
		}
		if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
			t.Fatalf("Parse(%q, %d) = %+v: outside the content", h, size, r)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes 0-99/100", "100-199/*", "5-4", "-1", "0-9223372036854775806"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, err := ParseContentRange(h)
		if err != nil {
			return
		}
		if r.Start < 0 || r.Length <= 0 || r.End() < r.Start {
			t.Fatalf("ParseContentRange(%q) = %+v", h, r)
		}
	})
}
