package cvss_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/cvss"
)

// describe renders what the data-driven tests compare.
func describe(s string) string {
	v, err := cvss.Parse(s)
	if err != nil {
		var pe *cvss.ParseError
		if !errors.As(err, &pe) || !errors.Is(err, cvss.ErrInvalidVector) {
			return "bad error type: " + err.Error()
		}
		return fmt.Sprintf("error metric=%q reason=%q", pe.Metric, pe.Reason)
	}
	out := fmt.Sprintf("version=%s base=%.1f temporal=%.1f environmental=%.1f score=%.1f severity=%s",
		v.Version(), v.BaseScore(), v.TemporalScore(), v.EnvironmentalScore(), v.Score(), v.Severity())
	if n := v.Nomenclature(); n != "" {
		out += " nomenclature=" + n
	}
	if c := v.String(); c != s {
		out += "\ncanonical=" + c
	}
	return out
}

type testCase struct {
	file, input, want string
	line              int
}

// readCases reads a data-driven test file: cases separated by blank lines,
// each an input line, a "----" line and the expected output. Lines starting
// with "#" between cases are comments; the input "<empty>" stands for "".
func readCases(t *testing.T, path string) []testCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []testCase
	var cur *testCase
	var inWant bool
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") && cur == nil:
		case line == "":
			if cur != nil {
				cases = append(cases, *cur)
				cur, inWant = nil, false
			}
		case cur == nil:
			if line == "<empty>" {
				line = ""
			}
			cur = &testCase{file: filepath.Base(path), input: line, line: n}
		case line == "----" && !inWant:
			inWant = true
		case inWant:
			if cur.want != "" {
				cur.want += "\n"
			}
			cur.want += line
		default:
			t.Fatalf("%s:%d: unexpected line %q", path, n, line)
		}
	}
	if cur != nil {
		cases = append(cases, *cur)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases := readCases(t, path)
			if len(cases) == 0 {
				t.Fatal("no cases")
			}
			for _, c := range cases {
				if got := describe(c.input); got != c.want {
					t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", c.file, c.line, c.input, got, c.want)
				}
			}
		})
	}
}

// TestGenerate prints describe() for the inputs of a file given by
// -cvss.gen, to help write new cases (the output must be reviewed).
func TestGenerate(t *testing.T) {
	if *genFile == "" {
		t.Skip("set -cvss.gen")
	}
	f, err := os.ReadFile(*genFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(f), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in := line
		if in == "<empty>" {
			in = ""
		}
		fmt.Printf("%s\n----\n%s\n\n", line, describe(in))
	}
}

var genFile = flag.String("cvss.gen", "", "file of inputs for TestGenerate")
