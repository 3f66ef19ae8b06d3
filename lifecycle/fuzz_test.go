package lifecycle

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// FuzzParse checks that Parse never panics, that whatever it accepts is
// valid, encodes to a document that parses to the same policy, and
// evaluates without panicking to one decision per image.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	d := func(s string) digest.Digest { return digest.FromString(s) }
	images := []Image{
		{Repository: "team-a/web", Digest: d("a"), Tags: []string{"prod-1", "latest"}, PushedAt: now.Add(-40 * 24 * time.Hour)},
		{Repository: "team-a/web", Digest: d("b"), PushedAt: now.Add(-10 * 24 * time.Hour), LastPulledAt: now.Add(-time.Hour)},
		{Repository: "team-a/web", Digest: d("c"), Tags: []string{"beta-1"}, PushedAt: now.Add(-2 * 24 * time.Hour), Children: []digest.Digest{d("d")}},
		{Repository: "team-a/web", Digest: d("d"), PushedAt: now.Add(-2 * 24 * time.Hour)},
		{Repository: "team-a/web", Digest: d("e"), Subject: d("a"), PushedAt: now.Add(-time.Minute), Pushing: true},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if _, ok := err.(*InvalidPolicyError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted a policy that Validate rejects: %v", err)
		}
		if enc := p.String(); len(enc) <= MaxDocumentSize {
			p2, err := Parse([]byte(enc))
			if err != nil {
				t.Fatalf("re-parse of %s: %v", enc, err)
			}
			if !reflect.DeepEqual(p, p2) {
				t.Fatalf("round trip changed the policy:\n%#v\n%#v", p, p2)
			}
		}
		ds := Evaluate(p, images, now)
		if len(ds) != len(images) {
			t.Fatalf("%d decisions for %d images", len(ds), len(images))
		}
		for i, dec := range ds {
			if dec.Digest != images[i].Digest || (dec.Action != Expire && dec.Action != Keep) || dec.Reason == "" {
				t.Fatalf("decision %d: %+v", i, dec)
			}
			if images[i].Pushing && dec.Action == Expire {
				t.Fatalf("an image being pushed expires: %+v", dec)
			}
		}
	})
}

// FuzzWildcard checks the tag-pattern matcher against a regular
// expression.
func FuzzWildcard(f *testing.F) {
	for _, s := range [][2]string{{"prod*", "production"}, {"*prod*", "repo-prod"}, {"v*.*.*-rc*", "v1.2.3-rc1"}, {"a*b*a", "abababa"}, {"**", ""}, {"*", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if err != nil {
			t.Skip()
		}
		if got, want := wildcardMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("wildcardMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}
