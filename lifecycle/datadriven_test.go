package lifecycle

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the data-driven tests")

// testCase is one case of a data-driven file: a command line, input
// lines, "----", then the expected output up to a blank line.
type testCase struct {
	pos      string
	cmd      string
	args     map[string]string
	input    string
	expected string
	outStart int // first output line index
	outEnd   int // one past the last output line index
}

func readCases(t *testing.T, path string) ([]*testCase, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var cases []*testCase
	for i := 0; i < len(lines); {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		c := &testCase{pos: fmt.Sprintf("%s:%d", filepath.Base(path), i+1), args: map[string]string{}}
		f := strings.Fields(l)
		c.cmd = f[0]
		for _, a := range f[1:] {
			k, v, _ := strings.Cut(a, "=")
			c.args[k] = v
		}
		i++
		var in []string
		for i < len(lines) && lines[i] != "----" {
			in = append(in, lines[i])
			i++
		}
		if i == len(lines) {
			t.Fatalf("%s: no ----", c.pos)
		}
		i++
		c.outStart = i
		var out []string
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			out = append(out, lines[i])
			i++
		}
		c.outEnd = i
		c.input = strings.Join(in, "\n")
		c.expected = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases, lines
}

// runDataDriven runs every case of every file matching glob through f and
// compares (or, with -rewrite, replaces) the expected output.
func runDataDriven(t *testing.T, glob string, f func(t *testing.T, c *testCase) string) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cases, lines := readCases(t, file)
			var out []string
			prev := 0
			for _, c := range cases {
				got := strings.TrimRight(f(t, c), "\n")
				if *rewrite {
					out = append(out, lines[prev:c.outStart]...)
					if got != "" {
						out = append(out, strings.Split(got, "\n")...)
					}
					prev = c.outEnd
					continue
				}
				if got != c.expected {
					t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", c.pos, c.cmd, got, c.expected)
				}
			}
			if *rewrite {
				out = append(out, lines[prev:]...)
				if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestParseDataDriven(t *testing.T) {
	runDataDriven(t, "testdata/parse/*", func(t *testing.T, c *testCase) string {
		if c.cmd != "parse" {
			t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
		}
		return parseOutput([]byte(c.input))
	})
}

func parseOutput(doc []byte) string {
	p, err := Parse(doc)
	if err != nil {
		ipe, ok := err.(*InvalidPolicyError)
		if !ok {
			return "unexpected error type: " + err.Error()
		}
		var b strings.Builder
		for _, f := range ipe.Fields {
			b.WriteString(f.Error() + "\n")
		}
		return b.String()
	}
	return "ok " + p.String()
}

const defaultNow = "2026-01-31T00:00:00Z"

// parseAge reads "31d", "2h", "1d12h" or a Go duration.
func parseAge(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		var n int
		if _, err := fmt.Sscanf(s[:i], "%d", &n); err != nil {
			return 0, err
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	return days + d, err
}

func nameDigest(name string) digest.Digest { return digest.FromString(name) }

// parseImages reads image lines: NAME key=value…, with keys tags,
// pushed (age), pulled (age), subject, children, parents, pushing, repo,
// media.
func parseImages(t *testing.T, pos string, lines []string, now time.Time, repo string) ([]Image, map[digest.Digest]string) {
	t.Helper()
	names := map[digest.Digest]string{}
	var images []Image
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		img := Image{Repository: repo, Digest: nameDigest(f[0]), PushedAt: now.Add(-24 * time.Hour)}
		names[img.Digest] = f[0]
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			list := func() []digest.Digest {
				var ds []digest.Digest
				for _, n := range strings.Split(v, ",") {
					ds = append(ds, nameDigest(n))
					names[nameDigest(n)] = n
				}
				return ds
			}
			switch k {
			case "tags":
				img.Tags = strings.Split(v, ",")
			case "pushed", "pulled":
				age, err := parseAge(v)
				if err != nil {
					t.Fatalf("%s: %s: %v", pos, kv, err)
				}
				if k == "pushed" {
					img.PushedAt = now.Add(-age)
				} else {
					img.LastPulledAt = now.Add(-age)
				}
			case "subject":
				img.Subject = list()[0]
			case "children":
				img.Children = list()
			case "parents":
				img.Parents = list()
			case "pushing":
				img.Pushing = true
			case "repo":
				img.Repository = v
			case "media":
				img.MediaType = v
			default:
				t.Fatalf("%s: unknown image attribute %q", pos, k)
			}
		}
		images = append(images, img)
	}
	return images, names
}

func TestEvaluateDataDriven(t *testing.T) {
	runDataDriven(t, "testdata/evaluate/*", func(t *testing.T, c *testCase) string {
		if c.cmd != "eval" {
			t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
		}
		nowS := c.args["now"]
		if nowS == "" {
			nowS = defaultNow
		}
		now, err := time.Parse(time.RFC3339, nowS)
		if err != nil {
			t.Fatal(err)
		}
		repo := c.args["repo"]
		if repo == "" {
			repo = "team/app"
		}
		doc, imgs, ok := strings.Cut(c.input, "\nimages:")
		if !ok {
			t.Fatalf("%s: no images: section", c.pos)
		}
		p, err := Parse([]byte(doc))
		if err != nil {
			return "parse: " + err.Error()
		}
		images, names := parseImages(t, c.pos, strings.Split(imgs, "\n"), now, repo)
		decisions := Evaluate(p, images, now)
		var b strings.Builder
		for _, d := range decisions {
			reason := d.Reason
			for dg, n := range names {
				reason = strings.ReplaceAll(reason, short(dg), n)
			}
			fmt.Fprintf(&b, "%s %s %d %s\n", names[d.Digest], d.Action, d.Rule, reason)
		}
		if c.args["order"] == "true" {
			b.WriteString("order:")
			for _, i := range expiryOrder(images, decisions) {
				b.WriteString(" " + names[images[i].Digest])
			}
			b.WriteString("\n")
		}
		return b.String()
	})
}
