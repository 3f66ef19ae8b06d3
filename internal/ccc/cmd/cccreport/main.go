// Command cccreport assesses Berth against the FINOS Common Cloud Controls
// and rewrites the committed report: it runs the internal/ccc test suite
// with BERTH_CCC_REPORT pointing at internal/ccc, which then holds
// REPORT.md (the table of requirements, tests and results, and the
// evidence of each) and ccc-report.json (the same records, Gemara-shaped).
//
//	go run ./internal/ccc/cmd/cccreport            from the module root
//	go run ./internal/ccc/cmd/cccreport -tlp amber assess for amber data
//
// Other arguments are passed to go test (for example -v). Set CI=true and
// source the test services' environment first to include the PostgreSQL
// and S3 checks. The exit status is go test's.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-dev/berth/internal/ccc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "cccreport:", err)
		os.Exit(1)
	}
}

// run assesses and writes the report, as the package doc says; args are
// the command-line arguments.
func run(args []string) error {
	fs := flag.NewFlagSet("cccreport", flag.ContinueOnError)
	tlp := fs.String("tlp", "red", "data classification to assess for: clear, green, amber or red")
	dir := fs.String("dir", filepath.Join("internal", "ccc"), "directory receiving REPORT.md and ccc-report.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, ok := ccc.ParseTLP(*tlp); !ok {
		return fmt.Errorf("-tlp %q: want clear, green, amber or red", *tlp)
	}
	if _, err := os.Stat(filepath.Join(*dir, "catalog.go")); err != nil {
		return fmt.Errorf("run from the module root (no %s): %w", filepath.Join(*dir, "catalog.go"), err)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	goArgs := append([]string{"test", "-count=1", "./internal/ccc"}, fs.Args()...)
	cmd := exec.Command("go", goArgs...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "BERTH_CCC_REPORT="+abs, "BERTH_CCC_TLP="+*tlp)
	err = cmd.Run()
	rep, rerr := ccc.ReadFile(filepath.Join(abs, ccc.JSONName))
	if rerr == nil {
		c := rep.Counts()
		fmt.Printf("cccreport: %s: %d Passed, %d Failed, %d NeedsReview, %d NotApplicable\n",
			filepath.Join(*dir, ccc.MarkdownName), c[ccc.Passed], c[ccc.Failed], c[ccc.NeedsReview], c[ccc.NotApplicable])
	}
	return err
}
