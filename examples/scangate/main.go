// Command scangate is a CI gate: it scans an image with Berth's offline
// scanner against OSV vulnerability data on disk, prints a summary, and
// exits non-zero when the image has vulnerabilities at or above a
// severity, or could not be analysed.
//
//	scangate --db ./osv --fail-on high registry.example/team/app:1.0
//	scangate --db ./osv/Debian.zip --unknown=pass oci:./layout@sha256:…
//
// REFERENCE is either an image reference pulled from a registry (with
// the credentials of the Docker config, as crane and docker use), or
// "oci:DIR" for an OCI image layout directory, optionally followed by
// "@DIGEST" to pick one manifest of its index. An index (multi-platform
// image) is scanned image by image, unless --platform selects one; the
// gate applies to every image.
//
// Exit status: 0 when the gate passes, 1 when it fails (a finding at or
// above --fail-on, or an image whose status is Unknown or Failed while
// --unknown=fail), 2 on usage or scanning errors.
//
// Flags:
//
//	--db PATH        OSV data: a directory, zip or JSON file; repeatable (required)
//	--fail-on SEV    critical, high, medium, low, none, unknown, or never (default high)
//	--unknown MODE   fail or pass: how an image that could not be analysed is treated (default fail)
//	--format FMT     text, json, sarif or cyclonedx (default text)
//	--platform P     os/arch[/variant] to scan from an index (default: all)
//	--insecure       allow plain HTTP registries
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/cyclonedx"
	"github.com/berth-dev/berth/scan/native"
	"github.com/berth-dev/berth/scan/sarif"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitError = 2
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scangate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbs multi
	fs.Var(&dbs, "db", "OSV data: directory, zip or JSON file (repeatable, required)")
	failOn := fs.String("fail-on", "high", "fail at or above this severity: critical, high, medium, low, none, unknown, never")
	unknown := fs.String("unknown", "fail", "treat images that could not be analysed as: fail or pass")
	format := fs.String("format", "text", "output: text, json, sarif or cyclonedx")
	platform := fs.String("platform", "", "os/arch[/variant] to scan from an index (default: all)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP registries")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() != 1 || len(dbs) == 0 {
		fmt.Fprintln(stderr, "usage: scangate --db PATH [flags] REFERENCE")
		fs.PrintDefaults()
		return exitError
	}
	threshold, never := scan.SeverityUnknown, false
	if strings.EqualFold(*failOn, "never") {
		never = true
	} else {
		var err error
		if threshold, err = scan.ParseSeverity(*failOn); err != nil {
			fmt.Fprintln(stderr, "scangate: --fail-on:", err)
			return exitError
		}
	}
	if *unknown != "fail" && *unknown != "pass" {
		fmt.Fprintln(stderr, "scangate: --unknown must be fail or pass")
		return exitError
	}
	switch *format {
	case "text", "json", "sarif", "cyclonedx":
	default:
		fmt.Fprintln(stderr, "scangate: --format must be text, json, sarif or cyclonedx")
		return exitError
	}
	var plat *v1.Platform
	if *platform != "" {
		p, err := v1.ParsePlatform(*platform)
		if err != nil {
			fmt.Fprintln(stderr, "scangate: --platform:", err)
			return exitError
		}
		plat = p
	}

	db, err := native.LoadDB(dbs...)
	if err != nil {
		fmt.Fprintln(stderr, "scangate:", err)
		return exitError
	}
	s, err := native.New(db, nil)
	if err != nil {
		fmt.Fprintln(stderr, "scangate:", err)
		return exitError
	}
	reports, err := scanRef(ctx, s, fs.Arg(0), plat, *insecure)
	if err != nil {
		fmt.Fprintln(stderr, "scangate:", err)
		return exitError
	}

	code := exitPass
	for _, c := range reports {
		r := c.Report
		if err := write(stdout, *format, c, len(reports) > 1); err != nil {
			fmt.Fprintln(stderr, "scangate:", err)
			return exitError
		}
		switch {
		case r.Status != scan.StatusSucceeded && *unknown == "fail":
			fmt.Fprintf(stderr, "scangate: FAIL %s: status %s: %s\n", c.Digest, r.Status, r.Reason)
			code = exitFail
		case !never && r.Summary.AtLeast(threshold) > 0:
			fmt.Fprintf(stderr, "scangate: FAIL %s: %d vulnerabilities at or above %s\n", c.Digest, r.Summary.AtLeast(threshold), threshold)
			code = exitFail
		}
	}
	if code == exitPass {
		fmt.Fprintln(stderr, "scangate: PASS")
	}
	return code
}

// scanRef resolves ref to one or more images and scans them.
func scanRef(ctx context.Context, s scan.Scanner, ref string, plat *v1.Platform, insecure bool) ([]scan.ChildReport, error) {
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		return scanLayout(ctx, s, dir, plat)
	}
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() && plat == nil {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		return scan.ScanIndex(ctx, s, idx, &scan.Options{Repository: r.Context().RepositoryStr()})
	}
	if plat != nil {
		ropts = append(ropts, remote.WithPlatform(*plat))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, err
	}
	return scanOne(ctx, s, img, nil)
}

func scanLayout(ctx context.Context, s scan.Scanner, arg string, plat *v1.Platform) ([]scan.ChildReport, error) {
	dir, want, _ := strings.Cut(arg, "@")
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	if want != "" {
		h, err := v1.NewHash(want)
		if err != nil {
			return nil, err
		}
		if img, err := idx.Image(h); err == nil {
			if mt, _ := img.MediaType(); mt.IsImage() {
				return scanOne(ctx, s, img, nil)
			}
		}
		if idx, err = idx.ImageIndex(h); err != nil {
			return nil, fmt.Errorf("%s: no manifest %s", dir, h)
		}
	}
	all, err := scan.ScanIndex(ctx, s, idx, nil)
	if err != nil {
		return nil, err
	}
	if plat == nil {
		if len(all) == 0 {
			return nil, errors.New(dir + ": no images")
		}
		return all, nil
	}
	var out []scan.ChildReport
	for _, c := range all {
		if c.Platform != nil && c.Platform.Satisfies(*plat) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no image for platform %s", dir, plat)
	}
	return out, nil
}

func scanOne(ctx context.Context, s scan.Scanner, img v1.Image, p *v1.Platform) ([]scan.ChildReport, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	r, err := s.Scan(ctx, img, nil)
	if err != nil {
		return nil, err
	}
	return []scan.ChildReport{{Digest: d, Platform: p, Report: r}}, nil
}

func write(w io.Writer, format string, c scan.ChildReport, several bool) error {
	r := c.Report
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "sarif":
		return sarif.Encode(w, r)
	case "cyclonedx":
		return cyclonedx.Encode(w, r)
	}
	if several {
		plat := ""
		if c.Platform != nil {
			plat = " (" + c.Platform.String() + ")"
		}
		fmt.Fprintf(w, "== %s%s\n", c.Digest, plat)
	}
	fmt.Fprintf(w, "image:    %s\nos:       %s\nstatus:   %s", r.Digest, orDash(r.OS), r.Status)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	s := r.Summary
	fmt.Fprintf(w, "\ndata:     %s\nfindings: %d (critical %d, high %d, medium %d, low %d, none %d, unknown %d; %d fixable)\n",
		r.DBVersion, s.Total, s.Critical, s.High, s.Medium, s.Low, s.None, s.Unknown, s.Fixable)
	for _, v := range r.Vulnerabilities {
		fix := "no fix"
		if v.Fixable {
			fix = "fixed in " + v.FixedVersion
		}
		fmt.Fprintf(w, "  %-8s %4.1f  %-20s %-24s %-24s %s\n", v.Severity, v.Score, v.ID, v.Package.Name, v.Package.Version, fix)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
