package ccc_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ccc"
)

var (
	// workDir holds what the run builds once (registryd).
	workDir string
	// profile is the classification assessed for.
	profile = ccc.Red
	// strict makes Failed requirements fail their Go tests.
	strict bool

	recordsMu sync.Mutex
	records   = map[string]*ccc.Record{}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if v := os.Getenv("BERTH_CCC_TLP"); v != "" {
		p, ok := ccc.ParseTLP(v)
		if !ok {
			fmt.Fprintf(os.Stderr, "BERTH_CCC_TLP=%q: want clear, green, amber or red\n", v)
			os.Exit(2)
		}
		profile = p
	}
	strict, _ = strconv.ParseBool(os.Getenv("BERTH_CCC_STRICT"))
	d, err := os.MkdirTemp("", "berth-ccc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	stopShared()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "ccc: report:", err)
		code = 1
	}
	_ = os.RemoveAll(d)
	os.Exit(code)
}

// writeReport writes the records of this run to BERTH_CCC_REPORT, or to
// a temporary directory removed afterwards. A full run (no -run filter)
// must have assessed every requirement of the catalog.
func writeReport() error {
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if len(records) == 0 {
		return nil // -list, or a filter that matched nothing
	}
	full := flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == ""
	rep := &ccc.Report{
		Catalog:     "FINOS Common Cloud Controls, CCC.CntrReg (unreleased, snapshot 9bda3728) with CCC.Core v2025.10",
		Profile:     profile,
		Target:      target(),
		GeneratedAt: time.Now().UTC().Truncate(time.Second),
	}
	var missing []string
	for _, q := range ccc.Catalog {
		rec, ok := records[q.ID]
		if !ok {
			missing = append(missing, q.Test)
			rec = &ccc.Record{Requirement: q, Result: ccc.NeedsReview, Evidence: []string{"not assessed in this run (test filtered out)"}}
		}
		rep.Records = append(rep.Records, *rec)
	}
	dir := os.Getenv("BERTH_CCC_REPORT")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "berth-ccc-report-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := rep.WriteFiles(dir); err != nil {
		return err
	}
	if os.Getenv("BERTH_CCC_REPORT") != "" {
		c := rep.Counts()
		fmt.Printf("ccc: report written to %s: %d Passed, %d Failed, %d NeedsReview, %d NotApplicable\n",
			dir, c[ccc.Passed], c[ccc.Failed], c[ccc.NeedsReview], c[ccc.NotApplicable])
	}
	if full && len(missing) > 0 {
		return fmt.Errorf("requirements without a test that ran: %s", strings.Join(missing, ", "))
	}
	return nil
}

// target describes the assessed deployment for the report.
func target() string {
	s := "examples/registryd (TLS with its generated certificate, file bucket under --data, SQLite metadata, local key-encryption key)"
	if os.Getenv("BERTH_TEST_POSTGRES_URL") != "" && os.Getenv("BERTH_TEST_S3_URL") != "" {
		s += "; encryption at rest also with S3 (versitygw) and PostgreSQL"
	}
	return s
}

// assessment collects the result and evidence of one requirement's test.
type assessment struct {
	t     *testing.T
	req   ccc.Requirement
	start time.Time

	mu       sync.Mutex
	evidence []string
	verdict  ccc.Result // set by Gap, Review, NotApplicable
}

// assess starts the assessment of the requirement whose test is t. It
// records NotApplicable and skips t when the requirement does not apply at
// the assessed classification.
func assess(t *testing.T) *assessment {
	t.Helper()
	var req ccc.Requirement
	for _, q := range ccc.Catalog {
		if q.Test == t.Name() {
			req = q
		}
	}
	if req.ID == "" {
		t.Fatalf("ccc: %s assesses no requirement of ccc.Catalog", t.Name())
	}
	a := &assessment{t: t, req: req, start: time.Now()}
	t.Cleanup(a.finish)
	t.Logf("%s (%s): %s", req.ID, req.LegacyID, req.Title)
	if !req.AppliesAt(profile) {
		a.NotApplicable("applies at %v only; assessed for %s", req.TLP, profile)
		t.SkipNow()
	}
	if runtime.GOOS != "linux" {
		// Listeners are enumerated from /proc, and clients inside and
		// outside a perimeter use loopback addresses other than 127.0.0.1.
		a.Skipf("the assessment runs on Linux only (this is %s)", runtime.GOOS)
	}
	return a
}

func (a *assessment) add(prefix, format string, args []any) string {
	msg := prefix + fmt.Sprintf(format, args...)
	a.mu.Lock()
	a.evidence = append(a.evidence, msg)
	a.mu.Unlock()
	return msg
}

// Evidence records an observation.
func (a *assessment) Evidence(format string, args ...any) {
	a.t.Helper()
	a.t.Log(a.add("", format, args))
}

// Errorf records a failed check and fails the test.
func (a *assessment) Errorf(format string, args ...any) {
	a.t.Helper()
	a.t.Error(a.add("FAIL: ", format, args))
}

// Fatalf records a failed check and stops the test.
func (a *assessment) Fatalf(format string, args ...any) {
	a.t.Helper()
	a.t.Fatal(a.add("FAIL: ", format, args))
}

// Gap records that the requirement is not met because Berth lacks the
// mechanism it needs. The result is Failed; the Go test fails only in
// strict mode (BERTH_CCC_STRICT).
func (a *assessment) Gap(format string, args ...any) {
	a.t.Helper()
	msg := a.add("NOT MET: ", format, args)
	a.mu.Lock()
	a.verdict = ccc.Failed
	a.mu.Unlock()
	if strict {
		a.t.Error(msg)
	} else {
		a.t.Log(msg)
	}
}

// Review records what keeps the requirement from being decided by the
// test alone; the result is NeedsReview unless something failed.
func (a *assessment) Review(format string, args ...any) {
	a.t.Helper()
	a.t.Log(a.add("REVIEW: ", format, args))
	a.mu.Lock()
	if a.verdict == "" || a.verdict == ccc.NotApplicable {
		a.verdict = ccc.NeedsReview
	}
	a.mu.Unlock()
}

// NotApplicable records why the requirement does not apply.
func (a *assessment) NotApplicable(format string, args ...any) {
	a.t.Helper()
	a.t.Log(a.add("NOT APPLICABLE: ", format, args))
	a.mu.Lock()
	if a.verdict == "" {
		a.verdict = ccc.NotApplicable
	}
	a.mu.Unlock()
}

// Skipf records why the test cannot run here (a missing service) and
// skips it; the requirement is then NeedsReview.
func (a *assessment) Skipf(format string, args ...any) {
	a.t.Helper()
	a.Review("not assessed: "+format, args...)
	a.t.SkipNow()
}

func (a *assessment) finish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := &ccc.Record{Requirement: a.req, Evidence: a.evidence, Duration: time.Since(a.start).Round(time.Millisecond).String()}
	switch {
	case a.t.Failed():
		rec.Result = ccc.Failed
	case a.verdict != "":
		rec.Result = a.verdict
	case a.t.Skipped():
		rec.Result = ccc.NeedsReview
		rec.Evidence = append(rec.Evidence, "test skipped; see its log")
	default:
		rec.Result = ccc.Passed
	}
	recordsMu.Lock()
	records[a.req.ID] = rec
	recordsMu.Unlock()
}
