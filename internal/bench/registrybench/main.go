// Command registrybench compares OCI registries on loopback in one run:
// Berth's registryd, CNCF Distribution v3 (filesystem driver) and
// go-containerregistry's in-memory registry. Each runs as its own child
// process with a fresh data directory, one at a time, and is measured for
// monolithic and chunked blob push, blob pull, manifest GET rate and
// latency, and peak resident memory. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is everything a run needs; flags fill it.
type config struct {
	registries   []string
	sizes        []int64
	chunk        int64
	reps         int
	rounds       int
	minBytes     int64
	verify       bool
	concurrency  int
	manifestDur  time.Duration
	warmup       time.Duration
	workDir      string
	keepData     bool
	registrydBin string
	authMode     string
	startTimeout time.Duration
	jsonOut      bool
	quick        bool
	// skipMissingRegistryd measures the peers alone when the tree has no
	// examples/registryd yet, instead of failing.
	skipMissingRegistryd bool
	log                  io.Writer // progress; nil for none
}

func defaultConfig() config {
	return config{
		registries:   []string{nameDistribution, nameGGCR, nameRegistryd},
		sizes:        []int64{16 << 20, 256 << 20},
		chunk:        8 << 20,
		reps:         2,
		rounds:       1,
		minBytes:     256 << 20,
		verify:       true,
		concurrency:  32,
		manifestDur:  5 * time.Second,
		warmup:       time.Second,
		authMode:     "auto",
		startTimeout: 60 * time.Second,
	}
}

// quickConfig is the smoke run of -quick and of the test.
func quickConfig(c config) config {
	c.sizes = []int64{1 << 20, 3 << 20}
	c.chunk = 1 << 20
	c.reps = 1
	c.minBytes = 0
	c.concurrency = 8
	c.manifestDur = 500 * time.Millisecond
	c.warmup = 100 * time.Millisecond
	return c
}

func main() {
	os.Exit(mainErr())
}

func mainErr() (code int) {
	cfg := defaultConfig()
	var sizes, registries string
	flag.StringVar(&registries, "registries", strings.Join(cfg.registries, ","), "registries to measure, in order (distribution, ggcr, registryd)")
	flag.StringVar(&sizes, "sizes", "16MiB,256MiB", "blob sizes, comma separated (B, KiB, MiB, GiB)")
	chunk := flag.String("chunk", "8MiB", "PATCH chunk size for the chunked push")
	flag.IntVar(&cfg.reps, "reps", cfg.reps, "minimum pushes and pulls of each kind per blob size (each push is a new blob)")
	flag.IntVar(&cfg.rounds, "rounds", cfg.rounds, "measure every registry this many times (fresh server each time) and keep each figure's best round")
	minBytes := flag.String("min-bytes", "256MiB", "push and pull at least this many bytes per kind and size (more repetitions for small blobs)")
	flag.BoolVar(&cfg.verify, "verify", cfg.verify, "hash every pulled blob and compare with its digest, as clients do")
	flag.IntVar(&cfg.concurrency, "concurrency", cfg.concurrency, "concurrent clients for the manifest GET load")
	flag.DurationVar(&cfg.manifestDur, "manifest-duration", cfg.manifestDur, "measured duration of the manifest GET load")
	flag.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "unmeasured warm-up before the manifest GET load")
	flag.StringVar(&cfg.workDir, "workdir", "", "directory for binaries and data directories (default: a new temporary directory)")
	flag.BoolVar(&cfg.keepData, "keep", false, "keep the work directory (binaries, data, server logs)")
	flag.StringVar(&cfg.registrydBin, "registryd-bin", "", "use this registryd binary instead of building examples/registryd")
	flag.StringVar(&cfg.authMode, "auth", cfg.authMode, "registryd authentication: auto (follow the challenge; Bearer means the token flow), basic (HTTP Basic on every request)")
	flag.DurationVar(&cfg.startTimeout, "start-timeout", cfg.startTimeout, "how long a server may take to answer /v2/")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print the results as JSON instead of tables")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: small blobs, one repetition, short manifest load")
	flag.Parse()

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		q := quickConfig(cfg)
		if !set["sizes"] {
			cfg.sizes = q.sizes
		}
		if !set["chunk"] {
			cfg.chunk = q.chunk
		}
		if !set["reps"] {
			cfg.reps = q.reps
		}
		if !set["min-bytes"] {
			cfg.minBytes = q.minBytes
		}
		if !set["concurrency"] {
			cfg.concurrency = q.concurrency
		}
		if !set["manifest-duration"] {
			cfg.manifestDur = q.manifestDur
		}
		if !set["warmup"] {
			cfg.warmup = q.warmup
		}
	}
	var err error
	if !(cfg.quick && !set["sizes"]) {
		if cfg.sizes, err = parseSizes(sizes); err != nil {
			fmt.Fprintln(os.Stderr, "registrybench: -sizes:", err)
			return 2
		}
	}
	if !(cfg.quick && !set["chunk"]) {
		if cfg.chunk, err = parseSize(*chunk); err != nil || cfg.chunk <= 0 {
			fmt.Fprintln(os.Stderr, "registrybench: -chunk: bad size", *chunk)
			return 2
		}
	}
	if !(cfg.quick && !set["min-bytes"]) {
		if cfg.minBytes, err = parseSize(*minBytes); err != nil || cfg.minBytes < 0 {
			fmt.Fprintln(os.Stderr, "registrybench: -min-bytes: bad size", *minBytes)
			return 2
		}
	}
	cfg.registries = splitList(registries)
	cfg.skipMissingRegistryd = !set["registries"]
	if cfg.reps < 1 || cfg.rounds < 1 || cfg.concurrency < 1 || len(cfg.registries) == 0 || len(cfg.sizes) == 0 {
		fmt.Fprintln(os.Stderr, "registrybench: -reps, -concurrency, -registries and -sizes must be positive / non-empty")
		return 2
	}
	if cfg.authMode != "auto" && cfg.authMode != "basic" {
		fmt.Fprintln(os.Stderr, "registrybench: -auth must be auto or basic")
		return 2
	}
	cfg.log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Children die with us on every path: return, panic, or a second signal.
	defer killChildren()
	defer func() {
		if p := recover(); p != nil {
			killChildren()
			panic(p)
		}
	}()
	go func() {
		<-ctx.Done()
		time.Sleep(10 * time.Second) // give the run a moment to stop cleanly
		killChildren()
		os.Exit(130)
	}()

	rep, err := run(ctx, cfg)
	if rep != nil {
		if cfg.jsonOut {
			if err := rep.writeJSON(os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "registrybench:", err)
				return 1
			}
		} else {
			rep.writeText(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range splitList(s) {
		n, err := parseSize(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n * mult, err
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
