package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Measurement names.
const (
	mPushMono    = "push-monolithic"
	mPushChunked = "push-chunked"
	mPull        = "pull"
	mManifestGet = "manifest-get"
	mRSSPeak     = "rss-peak"
)

// Result is one figure for one registry.
type Result struct {
	Registry    string `json:"registry"`
	Measurement string `json:"measurement"`
	// BlobSize is the blob size of a push or pull, and for rss-peak the
	// largest blob size measured before the reading (0: manifests only).
	BlobSize int64   `json:"blobSize"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"` // "MB/s" (10^6 bytes), "req/s", "MiB"
	// Manifest GET latency, milliseconds.
	P50ms float64 `json:"p50ms,omitempty"`
	P99ms float64 `json:"p99ms,omitempty"`
	// Requests is the number of operations timed.
	Requests int `json:"requests,omitempty"`
	Errors   int `json:"errors,omitempty"`
	// ServerCPU is the CPU time (user+system) the registry process used
	// during the measurement, seconds; Seconds is the wall time measured.
	ServerCPU float64 `json:"serverCPUSeconds"`
	// ClientCPU is the CPU time this benchmark process used meanwhile:
	// on a small machine client and server share the cores.
	ClientCPU float64 `json:"clientCPUSeconds,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	// OtherCPU is the CPU time every other process on the machine used
	// meanwhile (all busy time in /proc/stat less server and client):
	// well above zero, other work competed for the CPUs.
	OtherCPU float64 `json:"otherCPUSeconds"`
	// Load1 is the machine's one-minute load average at the end of the
	// measurement (it counts this benchmark's own threads too).
	Load1 float64 `json:"load1"`
	Round int     `json:"round"`
}

func (r Result) label() string {
	switch r.Measurement {
	case mManifestGet:
		return r.Measurement
	case mRSSPeak:
		if r.BlobSize == 0 {
			return r.Measurement + " (manifests)"
		}
		return r.Measurement + " (to " + formatSize(r.BlobSize) + ")"
	}
	return r.Measurement + " " + formatSize(r.BlobSize)
}

// Report is the outcome of a run.
type Report struct {
	Date        time.Time `json:"date"`
	Host        string    `json:"host"`
	CPUs        int       `json:"cpus"`
	CPUModel    string    `json:"cpuModel"`
	SHANI       bool      `json:"shaNI"`
	GoVersion   string    `json:"goVersion"`
	Sizes       []int64   `json:"blobSizes"`
	Chunk       int64     `json:"chunkSize"`
	Reps        int       `json:"reps"`
	MinBytes    int64     `json:"minBytes"`
	Concurrency int       `json:"concurrency"`
	ManifestDur string    `json:"manifestDuration"`
	Verify      bool      `json:"verifyPulls"`
	Registries  []string  `json:"registries"`
	Rounds      int       `json:"rounds"`
	// Results holds, per registry and measurement, the best round: the
	// highest throughput or request rate, and the highest peak RSS.
	Results   []Result `json:"results"`
	AllRounds []Result `json:"allRounds,omitempty"`
	Ratios    []Ratio  `json:"ratios,omitempty"`
	Failures  []string `json:"failures,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// run measures every registry of cfg in turn. It returns the report of
// whatever it measured, and an error if any registry failed.
func run(ctx context.Context, cfg config) (*Report, error) {
	host, _ := os.Hostname()
	rep := &Report{
		Date: time.Now().UTC(), Host: host, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		CPUModel: cpuModel(), SHANI: hasCPUFlag("sha_ni"),
		Sizes: cfg.sizes, Chunk: cfg.chunk, Reps: cfg.reps, MinBytes: cfg.minBytes, Rounds: cfg.rounds, Concurrency: cfg.concurrency,
		ManifestDur: cfg.manifestDur.String(), Verify: cfg.verify, Registries: cfg.registries,
	}
	logf := func(format string, args ...any) {
		if cfg.log != nil {
			fmt.Fprintf(cfg.log, "registrybench: "+format+"\n", args...)
		}
	}

	workDir := cfg.workDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "registrybench-")
		if err != nil {
			return nil, err
		}
		workDir = d
		if !cfg.keepData {
			defer os.RemoveAll(d)
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	binDir := filepath.Join(workDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	defer killChildren()

	if err := checkSelfDir(); err != nil {
		return nil, err
	}
	// Build everything before measuring anything.
	bins := map[string]string{}
	var errs []error
	for _, name := range cfg.registries {
		if name == nameRegistryd && cfg.registrydBin == "" && cfg.skipMissingRegistryd {
			if _, ok, err := registrydDir(ctx); err == nil && !ok {
				logf("examples/registryd does not exist in this tree; measuring the peers only")
				rep.Notes = append(rep.Notes, "registryd skipped: examples/registryd does not exist in this tree")
				continue
			}
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		logf("building %s", name)
		bin, err := buildServer(ctx, name, binDir, cfg.registrydBin)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: build: %v", name, err))
			continue
		}
		bins[name] = bin
	}

	// Digests of every blob a registry is sent, computed once, untimed.
	digests := &digestCache{}
	logf("generating blob digests")
	for _, size := range cfg.sizes {
		for i := 0; i < cfg.repsFor(size); i++ {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			digests.spec(blobKey(mPushMono, size, i), size)
			digests.spec(blobKey(mPushChunked, size, i), size)
		}
	}

	tr := newTransport()
	defer tr.CloseIdleConnections()
	var all []Result
	failed := map[string]bool{}
rounds:
	for round := 0; round < cfg.rounds; round++ {
		// Each round starts with the next registry, so that no registry
		// always runs first (or last) on a machine whose load drifts.
		for k := range cfg.registries {
			name := cfg.registries[(k+round)%len(cfg.registries)]
			bin, ok := bins[name]
			if !ok || failed[name] {
				continue
			}
			if err := ctx.Err(); err != nil {
				errs = append(errs, err)
				break rounds
			}
			if cfg.rounds > 1 {
				logf("round %d of %d", round+1, cfg.rounds)
			}
			res, err := benchRegistry(ctx, cfg, name, bin, workDir, tr, digests, logf)
			for i := range res {
				res[i].Round = round + 1
			}
			all = append(all, res...)
			if err != nil {
				failed[name] = true
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", name, err))
			}
			tr.CloseIdleConnections()
		}
	}
	rep.Results = bestOf(all, cfg.registries)
	if cfg.rounds > 1 {
		rep.AllRounds = all
	}
	rep.Ratios = ratios(rep.Results)
	return rep, errors.Join(errs...)
}

func blobKey(kind string, size int64, i int) string {
	return fmt.Sprintf("registrybench/%s/%d/%d", kind, size, i)
}

// benchRegistry starts one registry and takes all its measurements.
func benchRegistry(ctx context.Context, cfg config, name, bin, workDir string, tr *http.Transport, digests *digestCache, logf func(string, ...any)) ([]Result, error) {
	logf("starting %s", name)
	srv, err := startServer(ctx, name, bin, workDir, tr, cfg.startTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		srv.stop()
		if !cfg.keepData {
			os.RemoveAll(srv.dataDir)
		}
	}()
	c, err := newClient(srv.baseURL, tr, srv.user, srv.pass, cfg.authMode)
	if err != nil {
		return nil, err
	}
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	if c.challenge != "" {
		logf("%s challenges with %s; using %s", name, c.challenge, map[bool]string{true: "HTTP Basic", false: "the token flow"}[c.challenge == "basic" || cfg.authMode == "basic"])
	}

	var results []Result
	fail := func(err error) ([]Result, error) {
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		return results, fmt.Errorf("%w (server log: %s)", err, tail(srv.logPath, 1500))
	}
	var peakKiB int64
	rss := func(size int64) error {
		st, err := srv.stats()
		if err != nil {
			return err
		}
		// VmHWM is kept from per-thread counters the kernel folds in
		// lazily; readings are made monotonic here.
		peakKiB = max(peakKiB, st.hwmKiB)
		results = append(results, Result{Registry: name, Measurement: mRSSPeak, BlobSize: size, Value: float64(peakKiB) / 1024, Unit: "MiB", ServerCPU: st.cpuSec})
		return nil
	}

	// Manifest GETs first, on a nearly empty registry.
	const repo = "bench/app"
	if err := c.authorize(ctx, repo); err != nil {
		return fail(err)
	}
	logf("%s: manifest GET load, %d clients, %s", name, cfg.concurrency, cfg.manifestDur)
	r, err := manifestLoad(ctx, c, srv, repo, cfg)
	if err != nil {
		return fail(err)
	}
	results = append(results, r)
	if err := rss(0); err != nil {
		return fail(err)
	}

	buf := make([]byte, 1<<20)
	for _, size := range cfg.sizes {
		// A token obtained per size keeps long runs within token lifetimes.
		if err := c.authorize(ctx, repo); err != nil {
			return fail(err)
		}
		logf("%s: %s blobs: monolithic push", name, formatSize(size))
		reps := cfg.repsFor(size)
		r, err := timed(srv, name, mPushMono, size, reps, func(i int) error {
			return c.pushMonolithic(ctx, repo, digests.spec(blobKey(mPushMono, size, i), size))
		})
		if err != nil {
			return fail(err)
		}
		results = append(results, r)

		logf("%s: %s blobs: chunked push", name, formatSize(size))
		r, err = timed(srv, name, mPushChunked, size, reps, func(i int) error {
			return c.pushChunked(ctx, repo, digests.spec(blobKey(mPushChunked, size, i), size), cfg.chunk)
		})
		if err != nil {
			return fail(err)
		}
		results = append(results, r)

		logf("%s: %s blobs: pull", name, formatSize(size))
		r, err = timed(srv, name, mPull, size, reps, func(i int) error {
			return c.pull(ctx, repo, digests.spec(blobKey(mPushMono, size, i), size), cfg.verify, buf)
		})
		if err != nil {
			return fail(err)
		}
		results = append(results, r)
		if err := rss(size); err != nil {
			return fail(err)
		}
	}
	return results, nil
}

// timed runs op reps times back to back and reports throughput over the
// total wall time: bytes moved / seconds, in MB/s (10^6 bytes).
func timed(srv *server, name, m string, size int64, reps int, op func(i int) error) (Result, error) {
	before, err := takeSnap(srv)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	for i := 0; i < reps; i++ {
		if err := op(i); err != nil {
			return Result{}, fmt.Errorf("%s %s #%d: %w", m, formatSize(size), i, err)
		}
	}
	el := time.Since(start)
	after, err := takeSnap(srv)
	if err != nil {
		return Result{}, err
	}
	r := Result{
		Registry: name, Measurement: m, BlobSize: size,
		Value: float64(size) * float64(reps) / el.Seconds() / 1e6, Unit: "MB/s",
		Requests: reps, Seconds: el.Seconds(),
	}
	r.setCPU(before, after)
	return r, nil
}

// manifestLoad pushes a small image, warms up, then runs cfg.concurrency
// clients GETting the tag for cfg.manifestDur.
func manifestLoad(ctx context.Context, c *client, srv *server, repo string, cfg config) (Result, error) {
	const tag = "bench"
	if _, err := c.pushImage(ctx, repo, tag); err != nil {
		return Result{}, err
	}
	// One check that the tag resolves before loading it.
	if _, err := c.getManifest(ctx, repo, tag, make([]byte, 64<<10)); err != nil {
		return Result{}, err
	}

	var (
		mu      sync.Mutex
		lats    []time.Duration
		nErr    int
		lastErr error
		wg      sync.WaitGroup
	)
	warmEnd := time.Now().Add(cfg.warmup)
	var before cpuSnap
	var beforeErr error
	var once sync.Once
	end := warmEnd.Add(cfg.manifestDur)
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			local := make([]time.Duration, 0, 4096)
			errs := 0
			var le error
			for {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					break
				}
				measured := !t0.Before(warmEnd)
				if measured {
					once.Do(func() { before, beforeErr = takeSnap(srv) })
				}
				_, err := c.getManifest(ctx, repo, tag, buf)
				d := time.Since(t0)
				if !measured || t0.Add(d).After(end) {
					continue
				}
				if err != nil {
					errs++
					le = err
					continue
				}
				local = append(local, d)
			}
			mu.Lock()
			lats = append(lats, local...)
			nErr += errs
			if le != nil {
				lastErr = le
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	after, err := takeSnap(srv)
	if err != nil {
		return Result{}, err
	}
	if beforeErr != nil {
		return Result{}, beforeErr
	}
	if len(lats) == 0 {
		return Result{}, fmt.Errorf("manifest GET: no successful request (%d errors, last: %v)", nErr, lastErr)
	}
	if nErr*100 > len(lats) {
		return Result{}, fmt.Errorf("manifest GET: %d errors in %d requests, last: %v", nErr, nErr+len(lats), lastErr)
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		i := int(p * float64(len(lats)-1))
		return float64(lats[i].Microseconds()) / 1000
	}
	r := Result{
		Registry: srv.name, Measurement: mManifestGet,
		Value: float64(len(lats)) / cfg.manifestDur.Seconds(), Unit: "req/s",
		P50ms: pct(0.50), P99ms: pct(0.99), Requests: len(lats), Errors: nErr,
		Seconds: cfg.manifestDur.Seconds(),
	}
	r.setCPU(before, after)
	return r, nil
}

// repsFor is how many blobs of size each push and pull measurement moves:
// at least cfg.reps, and enough to move cfg.minBytes.
func (c config) repsFor(size int64) int {
	n := c.reps
	if c.minBytes > 0 {
		n = max(n, int((c.minBytes+size-1)/size))
	}
	return n
}

// selfCPU is this process's user+system CPU time, seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func cpuinfo() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return string(b)
}

func cpuModel() string {
	for _, line := range strings.Split(cpuinfo(), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func hasCPUFlag(flag string) bool {
	for _, line := range strings.Split(cpuinfo(), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			return slices.Contains(strings.Fields(v), flag)
		}
	}
	return false
}

// bestOf keeps one result per registry and measurement: the round with the
// highest value (for rss-peak, the highest peak, the conservative choice).
// Results come out grouped by registry in the order of registries.
func bestOf(all []Result, registries []string) []Result {
	type key struct {
		reg, m string
		size   int64
	}
	best := map[key]int{}
	var order []key
	for i, r := range all {
		k := key{r.Registry, r.Measurement, r.BlobSize}
		j, ok := best[k]
		if !ok {
			order = append(order, k)
			best[k] = i
			continue
		}
		if r.Value > all[j].Value {
			best[k] = i
		}
	}
	var out []Result
	for _, reg := range registries {
		for _, k := range order {
			if k.reg == reg {
				out = append(out, all[best[k]])
			}
		}
	}
	return out
}

// load1 is the one-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// cpuSnap is a reading of the CPU time used so far by the server, by this
// process and by the whole machine.
type cpuSnap struct {
	server, client, machine float64
}

func takeSnap(srv *server) (cpuSnap, error) {
	st, err := srv.stats()
	if err != nil {
		return cpuSnap{}, err
	}
	return cpuSnap{server: st.cpuSec, client: selfCPU(), machine: machineBusy()}, nil
}

func (r *Result) setCPU(before, after cpuSnap) {
	r.ServerCPU = after.server - before.server
	r.ClientCPU = after.client - before.client
	r.OtherCPU = max(0, after.machine-before.machine-r.ServerCPU-r.ClientCPU)
	r.Load1 = load1()
}

// machineBusy is the busy CPU time of the whole machine since boot,
// seconds: every field of the "cpu" line of /proc/stat but idle and iowait.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return float64(busy) / clockTicks
}
