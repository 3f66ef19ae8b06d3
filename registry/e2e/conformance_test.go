package e2e_test

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/registry/registrytest"
)

// The OCI distribution-spec conformance suite, at the version the module
// proxy serves. It is a main package configured by OCI_* variables; the
// test installs it with go install, so it needs no entry in go.mod.
const (
	conformancePkg     = "github.com/opencontainers/distribution-spec/conformance"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
)

var conformanceBin once

// conformance returns the path of the suite's binary, installed once per
// run into the work directory (the Go build cache makes repeat runs
// quick).
func conformance(t testing.TB) string {
	t.Helper()
	conformanceBin.Do(func() {
		gobin := filepath.Join(workDir, "conformance-bin")
		cmd := exec.Command("go", "install", conformancePkg+"@"+conformanceVersion)
		cmd.Dir = workDir // outside this module: go install pkg@version ignores it anyway
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			conformanceBin.err = fmt.Errorf("go install %s@%s: %v\n%s", conformancePkg, conformanceVersion, err, b)
			return
		}
		conformanceBin.path = filepath.Join(gobin, "conformance")
	})
	if conformanceBin.err != nil {
		// Without the module proxy and an empty module cache the suite
		// cannot be installed: skip, except in CI.
		skipOrFail(t, "%v", conformanceBin.err)
	}
	return conformanceBin.path
}

// conformanceTarget is a registry the suite runs against.
type conformanceTarget struct {
	host, user, password string
	// tls is the suite's OCI_TLS: "disabled" (HTTP) or "enabled".
	tls string
	// caFile is the CA to trust for "enabled".
	caFile string
}

// TestConformance runs the OCI conformance suite against the in-memory
// registrytest server and against registryd (SQLite metadata, file
// bucket, HTTP Basic and the default policy) over HTTP and over TLS.
// Every API is enabled, including those only the development profile
// turns on by default (upload cancellation, required
// Docker-Content-Digest headers, tag parameters on manifest pushes), and
// every kind of test data, sha256 and sha512 alike, except sparse
// manifests: Berth accepts a manifest only when everything it references
// is stored (write, then publish), which the specification allows and the
// suite does not test by default. The test fails unless the suite reports
// no failure, no error and no skipped check.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite takes a few seconds per run; skipped with -short")
	}
	bin := conformance(t)
	for _, tc := range []struct {
		name    string
		version string
		target  func(t *testing.T) conformanceTarget
	}{
		{"memory/1.1", "1.1", memoryTarget},
		{"registryd-sqlite-http/1.1", "1.1", func(t *testing.T) conformanceTarget { return registrydTarget(t, true) }},
		{"registryd-sqlite-tls/dev", "dev", func(t *testing.T) conformanceTarget { return registrydTarget(t, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runConformance(t, bin, tc.version, tc.target(t))
		})
	}
}

func memoryTarget(t *testing.T) conformanceTarget {
	srv := registrytest.NewServer(t, nil)
	return conformanceTarget{host: srv.Host(), user: registrytest.AdminUser, password: registrytest.AdminPassword, tls: "disabled"}
}

func registrydTarget(t *testing.T, plainHTTP bool) conformanceTarget {
	s := startRegistryd(t, plainHTTP)
	c := conformanceTarget{host: s.Host, user: s.User, password: s.Password, tls: "disabled"}
	if s.TLS {
		c.tls, c.caFile = "enabled", s.CAFile
	}
	return c
}

func runConformance(t *testing.T, bin, version string, target conformanceTarget) {
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no oci-conformance.yaml here
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") && !strings.HasPrefix(kv, "SSL_CERT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"OCI_VERSION="+version,
		"OCI_REGISTRY="+target.host,
		"OCI_TLS="+target.tls,
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME="+target.user,
		"OCI_PASSWORD="+target.password,
		"OCI_RESULTS_DIR="+results,
		"OCI_LOG=warn",
		// Every API and every kind of data, whatever the version's
		// defaults.
		"OCI_API_PING=true",
		"OCI_API_PULL=true",
		"OCI_API_PUSH=true",
		"OCI_API_BLOBS_ATOMIC=true",
		"OCI_API_BLOBS_DELETE=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_MANIFESTS_ATOMIC=true",
		"OCI_API_MANIFESTS_DELETE=true",
		"OCI_API_TAGS_ATOMIC=true",
		"OCI_API_TAGS_DELETE=true",
		"OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		"OCI_DATA_IMAGE=true",
		"OCI_DATA_INDEX=true",
		"OCI_DATA_INDEX_LIST=true",
		"OCI_DATA_ARTIFACT=true",
		"OCI_DATA_SUBJECT=true",
		"OCI_DATA_SUBJECT_MISSING=true",
		"OCI_DATA_ARTIFACT_LIST=true",
		"OCI_DATA_SUBJECT_LIST=true",
		"OCI_DATA_DATA_FIELD=true",
		"OCI_DATA_NONDISTRIBUTABLE=true",
		"OCI_DATA_CUSTOM_FIELDS=true",
		"OCI_DATA_NO_LAYERS=true",
		"OCI_DATA_EMPTY_BLOB=true",
		"OCI_DATA_SHA512=true",
		"OCI_DATA_SPARSE=false",
	)
	if target.caFile != "" {
		env = append(env, "SSL_CERT_FILE="+target.caFile)
	}
	cmd.Env = env
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	rep, perr := readConformanceResults(results)
	if perr != nil {
		t.Fatalf("conformance suite (exit %v) left no readable results: %v\nstdout:\n%s\nstderr:\n%s", err, perr, lastLines(string(out), 80), lastLines(stderr, 40))
	}
	t.Logf("OCI conformance %s (%s) against %s (TLS %s): %s", conformanceVersion, version, target.host, target.tls, rep.summary())
	for _, line := range rep.breakdown() {
		t.Log("  " + line)
	}
	bad := rep.problems()
	if err != nil || len(bad) > 0 {
		t.Errorf("conformance suite exit: %v; %d checks did not pass:\n%s\n\nsuite output (failures):\n%s",
			err, len(bad), strings.Join(bad, "\n"), failureLines(string(out)))
	}
}

// failureLines keeps the lines of the suite's report that are not passes.
func failureLines(out string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasSuffix(l, ": Pass") {
			continue
		}
		if strings.HasPrefix(l, "Configuration:") {
			break
		}
		b.WriteString(l + "\n")
	}
	return lastLines(b.String(), 200)
}

// conformanceResults is what the suite wrote: the leaf checks of
// junit.xml and the per-API and per-data verdicts of results.yaml.
type conformanceResults struct {
	cases []junitCase
	apis  map[string]string // "Blob push" → "Pass"
	data  map[string]string // "Image" → "Pass"
}

type junitCase struct {
	Name   string `xml:"name,attr"`
	Status string `xml:"status,attr"` // passed, skipped, failure, error
	Out    string `xml:"system-out"`
}

func readConformanceResults(dir string) (*conformanceResults, error) {
	b, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		return nil, err
	}
	var suites struct {
		Suites []struct {
			Cases []junitCase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		return nil, fmt.Errorf("junit.xml: %w", err)
	}
	r := &conformanceResults{apis: map[string]string{}, data: map[string]string{}}
	for _, s := range suites.Suites {
		r.cases = append(r.cases, s.Cases...)
	}
	if len(r.cases) == 0 {
		return nil, fmt.Errorf("junit.xml lists no test cases")
	}
	y, err := os.ReadFile(filepath.Join(dir, "results.yaml"))
	if err != nil {
		return nil, err
	}
	// results.yaml ends with two flat maps, "apis:" and "data:", of
	// "  Name: Status" lines.
	var section map[string]string
	for _, line := range strings.Split(string(y), "\n") {
		switch {
		case line == "apis:":
			section = r.apis
		case line == "data:":
			section = r.data
		case !strings.HasPrefix(line, "  "):
			section = nil
		case section != nil && !strings.HasPrefix(line, "   "):
			k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if ok {
				section[strings.Trim(k, `"`)] = strings.Trim(v, `"`)
			}
		}
	}
	if len(r.apis) == 0 || len(r.data) == 0 {
		return nil, fmt.Errorf("results.yaml has no apis or data verdicts")
	}
	return r, nil
}

// workflows sorts the suite's API verdicts into the specification's four
// workflow categories.
var workflows = []struct {
	name string
	apis []string
}{
	{"pull", []string{"Ping", "Blob get", "Blob get range", "Blob head", "Manifest get by digest", "Manifest get by tag", "Manifest head by digest", "Manifest head by tag"}},
	{"push", []string{"Blob push", "Blob post only", "Blob post put", "Blob chunked", "Blob streaming", "Blob mount", "Blob anonymous mount", "Manifest put by digest", "Manifest put by tag", "Manifest put with subject", "Manifest put with tag params"}},
	{"content discovery", []string{"Tag listing", "Referrers"}},
	{"content management", []string{"Tag delete", "Tag delete atomic", "Manifest delete", "Manifest delete atomic", "Blob delete", "Blob delete atomic", "Blob upload cancel"}},
}

// algorithm tells which digest algorithm a check's data uses.
func algorithm(name string) string {
	if strings.Contains(name, "sha512") {
		return "sha512"
	}
	return "sha256"
}

func (r *conformanceResults) counts(filter func(junitCase) bool) map[string]int {
	c := map[string]int{}
	for _, tc := range r.cases {
		if filter(tc) {
			c[tc.Status]++
		}
	}
	return c
}

func fmtCounts(c map[string]int) string {
	return fmt.Sprintf("%d passed, %d failed, %d errors, %d skipped", c["passed"], c["failure"], c["error"], c["skipped"])
}

func (r *conformanceResults) summary() string {
	return fmtCounts(r.counts(func(junitCase) bool { return true })) + fmt.Sprintf(" of %d checks", len(r.cases))
}

func (r *conformanceResults) breakdown() []string {
	var lines []string
	for _, alg := range []string{"sha256", "sha512"} {
		lines = append(lines, fmt.Sprintf("%s: %s", alg, fmtCounts(r.counts(func(c junitCase) bool { return algorithm(c.Name) == alg }))))
	}
	for _, w := range workflows {
		verdict := map[string]int{}
		for _, a := range w.apis {
			verdict[r.apis[a]]++
		}
		var parts []string
		for _, k := range sortedKeys(verdict) {
			label := k
			if label == "" {
				label = "not reported"
			}
			parts = append(parts, fmt.Sprintf("%d %s", verdict[k], label))
		}
		lines = append(lines, fmt.Sprintf("workflow %s: %d APIs: %s", w.name, len(w.apis), strings.Join(parts, ", ")))
	}
	dv := map[string]int{}
	for _, v := range r.data {
		dv[v]++
	}
	var parts []string
	for _, k := range sortedKeys(dv) {
		parts = append(parts, fmt.Sprintf("%d %s", dv[k], k))
	}
	lines = append(lines, fmt.Sprintf("data: %d kinds: %s", len(r.data), strings.Join(parts, ", ")))
	return lines
}

// problems lists every check, API and data kind that did not pass. Only
// sparse manifests may be disabled (see TestConformance).
func (r *conformanceResults) problems() []string {
	var bad []string
	for _, c := range r.cases {
		if c.Status != "passed" {
			bad = append(bad, fmt.Sprintf("%s: %s %s", c.Name, c.Status, strings.TrimSpace(c.Out)))
		}
	}
	for _, w := range workflows {
		for _, a := range w.apis {
			if v := r.apis[a]; v != "Pass" {
				bad = append(bad, fmt.Sprintf("API %q (%s): %q", a, w.name, v))
			}
		}
	}
	known := map[string]bool{}
	for _, w := range workflows {
		for _, a := range w.apis {
			known[a] = true
		}
	}
	for a, v := range r.apis {
		if !known[a] && v != "Pass" {
			bad = append(bad, fmt.Sprintf("API %q: %q", a, v))
		}
	}
	for d, v := range r.data {
		if v != "Pass" && !(d == "Sparse Manifests" && v == "Disabled") {
			bad = append(bad, fmt.Sprintf("data %q: %q", d, v))
		}
	}
	slices.Sort(bad)
	return bad
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
