package native_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/scan"
)

// TestRanges checks OSV range semantics on npm package x@1.5.0.
func TestRanges(t *testing.T) {
	cases := []struct {
		id, affected string
		want         bool
		fixed        string
	}{
		{"TWO-RANGES", `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"1.2.0"},{"introduced":"1.4.0"},{"fixed":"1.6.0"}]}]`, true, "1.6.0"},
		{"LAST-EQUAL", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.5.0"}]}]`, true, ""},
		{"LAST-BELOW", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.4.9"}]}]`, false, ""},
		{"LISTED", `"versions":["1.4.0","1.5.0"]`, true, ""},
		{"LATER", `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.5.1"}]}]`, false, ""},
		{"GIT-ONLY", `"ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"0"},{"fixed":"abc"}]}]`, false, ""},
		{"FIXED-EQUAL", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.0"}]}]`, false, ""},
		{"UNSORTED", `"ranges":[{"type":"SEMVER","events":[{"fixed":"2.0.0"},{"introduced":"1.0.0"}]}]`, true, "2.0.0"},
		{"PRERELEASE-FIX", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.1-rc.1"}]}]`, true, "1.5.1-rc.1"},
		{"OTHER-PACKAGE", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`, false, ""},
	}
	var recs []string
	for _, c := range cases {
		name := "x"
		if c.id == "OTHER-PACKAGE" {
			name = "y"
		}
		recs = append(recs, fmt.Sprintf(`{"id":%q,"affected":[{"package":{"ecosystem":"npm","name":%q},%s}]}`, c.id, name, c.affected))
	}
	s := newScanner(t, mustDB(t, "["+strings.Join(recs, ",")+"]"))
	r, err := s.Scan(context.Background(), image(t, layer(t, npm("app", "x", "1.5.0"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range r.Vulnerabilities {
		got[v.ID] = v.FixedVersion
	}
	for _, c := range cases {
		fixed, ok := got[c.id]
		if ok != c.want || fixed != c.fixed {
			t.Errorf("%s: affected %v fixed %q; want %v %q", c.id, ok, fixed, c.want, c.fixed)
		}
	}
}

func TestUbuntuLTS(t *testing.T) {
	s := newScanner(t, mustDB(t, `[{"id": "UBUNTU-CVE-2024-1", "upstream": ["CVE-2024-1"],
		"affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
		"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.15"}]}]}]}]`))
	img := image(t, layer(t,
		file{Name: "etc/os-release", Body: []byte("ID=ubuntu\nVERSION_ID=\"22.04\"\n")},
		file{Name: "var/lib/dpkg/status", Body: []byte("Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.2-0ubuntu1.14\n\n")},
	))
	r, err := s.Scan(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || len(r.Vulnerabilities) != 1 || r.Vulnerabilities[0].FixedVersion != "3.0.2-0ubuntu1.15" {
		t.Errorf("report: %s %s %+v", r.Status, r.Reason, r.Vulnerabilities)
	}
}
