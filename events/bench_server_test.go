package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/bearer"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const benchAdminPW = "bench-admin-password"

// realServer is a registry wired as registryd wires it: SQLite metadata
// in a file, an encrypted file bucket, the bootstrap admin over Basic,
// the token service and Bearer JWTs, the default policy. bare serves it
// alone; wrapped behind the access log (to a file), metrics and rate
// limits per address and per identity, as registryd does.
type realServer struct {
	bare, wrapped http.Handler
	jwt           string // a pull token for bench/app
}

func newRealServer(b testing.TB) *realServer {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	meta, err := storage.OpenMetadata(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "meta.db")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meta.Close() })
	keeper, keyID, err := storage.LoadOrCreateKeyFile(filepath.Join(dir, "kek"))
	if err != nil {
		b.Fatal(err)
	}
	store, err := storage.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, "blobs")), meta, &storage.Options{Keeper: keeper, KeyID: keyID})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	reg, err := store.Registry()
	if err != nil {
		b.Fatal(err)
	}
	key, err := token.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	admin := basic.NewStatic("admin", benchAdminPW, auth.Identity{Admin: true})
	authz := policy.New(reg)
	svc, err := token.NewService(key, basic.New(admin), authz, &token.Options{Service: "berth"})
	if err != nil {
		b.Fatal(err)
	}
	authenticator := auth.ByScheme(basic.New(admin), bearer.New(svc.Verifier()))

	// The stack registryd builds (observe and rateLimits in
	// examples/registryd), with limits too high to refuse anything.
	f, err := os.OpenFile(filepath.Join(dir, "access.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	accessLog, err := events.NewAccessLog(&events.AccessLogOptions{Output: f})
	if err != nil {
		b.Fatal(err)
	}
	metrics, err := events.NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	lim := events.Limit{Rate: 1e9, Burst: 1e9}
	limiter, err := events.NewMemoryLimiter(&events.MemoryLimiterOptions{Address: lim, Identity: lim})
	if err != nil {
		b.Fatal(err)
	}
	limits, err := events.NewRateLimit(limiter, &events.RateLimitOptions{Metrics: metrics})
	if err != nil {
		b.Fatal(err)
	}

	s := &realServer{}
	var base string
	handler := func(a auth.Authenticator, z auth.Authorizer) http.Handler {
		h, err := registry.New(store, &registry.Options{Authenticator: a, Authorizer: z, Realm: "http://registry.test/token", Service: "berth"})
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/token", svc)
		mux.Handle("/", h)
		return mux
	}
	s.bare = handler(authenticator, authz)
	s.wrapped = accessLog.Middleware(metrics.Middleware(limits.Middleware(
		handler(events.ObserveAuthenticator(authenticator, limits), events.ObserveAuthorizer(authz)))))

	// Push one small image as admin, through the token flow.
	srv := httptest.NewServer(s.bare)
	defer srv.Close()
	base = srv.Listener.Addr().String()
	ref, _ := name.ParseReference(base+"/bench/app:v1", name.Insecure)
	img, _ := random.Image(1024, 2)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: benchAdminPW}),
		remote.WithTransport(realmRewrite{base})); err != nil {
		b.Fatalf("push: %v", err)
	}
	resp, err := svc.Issue(ctx, &auth.Identity{Subject: "admin", Admin: true},
		[]auth.Scope{{Type: auth.TypeRepository, Name: "bench/app", Actions: []string{auth.Pull}}}, false)
	if err != nil {
		b.Fatal(err)
	}
	s.jwt = resp.Token
	// bench/pub is public: anonymous pulls, the cheapest real GET.
	if err := remote.Write(mustRef(base+"/bench/pub:v1"), img, remote.WithAuth(&authn.Basic{Username: "admin", Password: benchAdminPW}),
		remote.WithTransport(realmRewrite{base})); err != nil {
		b.Fatalf("push: %v", err)
	}
	r, err := reg.GetRepository(ctx, "bench/pub")
	if err != nil {
		b.Fatal(err)
	}
	r.Visibility = driver.Public
	if err := reg.UpdateRepository(ctx, r); err != nil {
		b.Fatal(err)
	}
	return s
}

func mustRef(s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		panic(err)
	}
	return r
}

// realmRewrite sends the client's token requests, made to the realm the
// registry announces, to the test server.
type realmRewrite struct{ host string }

func (t realmRewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "registry.test" {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = t.host, t.host
	}
	return http.DefaultTransport.RoundTrip(r)
}

// manifestRequests are the manifest GETs measured: a Bearer JWT (what
// docker, podman and crane send after the token flow), HTTP Basic, and
// an anonymous pull of a public repository.
func (s *realServer) manifestRequests() map[string]*http.Request {
	get := func(path, authz string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		return r
	}
	basicReq := get("/v2/bench/app/manifests/v1", "")
	basicReq.SetBasicAuth("admin", benchAdminPW)
	return map[string]*http.Request{
		"bearer":    get("/v2/bench/app/manifests/v1", "Bearer "+s.jwt),
		"basic":     basicReq,
		"anonymous": get("/v2/bench/pub/manifests/v1", ""),
	}
}

// BenchmarkManifestGETRealServer measures manifest GETs served by the
// registry as registryd wires it (SQLite metadata file, encrypted file
// bucket, real authentication), bare and behind the access log (records
// written to a file), metrics and rate limits, calling ServeHTTP directly
// so that the network does not dilute the difference:
//
//	go test -run '^$' -bench ManifestGETRealServer -count 6 ./events
//
// On the 2-core development machine under other work (load average
// 10-13), CPU µs per request, bare → wrapped: Basic 26-28 → 29-31 with
// records to io.Discard (the middlewares' own 2-4 µs), 29-32 → 41-49 to a
// file: in one goroutine every record is its own write(2), which costs
// 8-15 µs on that loaded machine's ext4 (2.4 µs idle). With 16 goroutines
// (-parallel variants) records share writes (0.13 writes per record) and
// the difference falls to about 5 µs.
//
// Over HTTP (TestMiddlewareOverhead: two server processes side by side,
// 16 keep-alive clients each, medians of 25 pairs of rounds; two bare
// servers measured so differ by less than 2%), the server's CPU per
// request grew by 9.7-10.6% (Bearer, 78-97 µs bare), 9.7-9.9% (Basic,
// 79-86 µs) and 8.7-10.8% (anonymous, 85-114 µs), about 8 µs per request
// whatever the credentials: they are verified once, by the registry. Of
// that, writing the records to the file, each request waiting for its
// own record's write(2) (about 3.5 records share one), is about half;
// the same stack logging to io.Discard cost 4-6%, metrics and rate
// limits without the access log 2-4%.
func BenchmarkManifestGETRealServer(b *testing.B) {
	s := newRealServer(b)
	reqs := s.manifestRequests()
	for _, kind := range []string{"bearer", "basic", "anonymous"} {
		b.Run(kind+"/bare", func(b *testing.B) { benchRequest(b, s.bare, reqs[kind]) })
		b.Run(kind+"/wrapped", func(b *testing.B) { benchRequest(b, s.wrapped, reqs[kind]) })
	}
	for _, kind := range []string{"basic", "anonymous"} {
		b.Run(kind+"/bare-parallel", func(b *testing.B) { benchRequestParallel(b, s.bare, reqs[kind]) })
		b.Run(kind+"/wrapped-parallel", func(b *testing.B) { benchRequestParallel(b, s.wrapped, reqs[kind]) })
	}
}

// benchRequestParallel is benchRequest from 4 goroutines per CPU.
func benchRequestParallel(b *testing.B, h http.Handler, req *http.Request) {
	b.SetParallelism(4)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func benchRequest(b *testing.B, h http.Handler, req *http.Request) {
	check := httptest.NewRecorder()
	h.ServeHTTP(check, req)
	if check.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", req.URL, check.Code, check.Body)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// TestMiddlewareOverhead measures what the middlewares cost a server
// answering manifest GETs: its CPU time per request, bare and wrapped.
//
// Two server processes (this test binary, in TestOverheadServer) run
// side by side, each with its own SQLite database and bucket, and one
// load process (TestLoadClient) sends both the same requests at the same
// time: 16 keep-alive connections each, over loopback HTTP. Both servers
// thus share whatever else the machine is doing during every round, and
// each process's CPU time is its own. In each pair of rounds one process
// serves bare and the other wrapped, then the other way round, so that
// differences between the two processes cancel out: the cost of a pair
// is the geometric mean of its two wrapped/bare ratios of CPU per
// request, minus one. The test reports the median over the pairs and
// fails when it exceeds BERTH_OVERHEAD_MAX percent (default 5). It also
// logs, for reference, the handler alone called in-process from 16
// goroutines, in alternating rounds.
//
// BERTH_OVERHEAD_AA=1 has both processes serve bare: what it reports is
// the measurement's own noise. The test runs only when BERTH_OVERHEAD=1;
// on a shared machine run it under a lock that keeps other benchmarks
// away:
//
//	BERTH_OVERHEAD=1 go test -run MiddlewareOverhead -v ./events
func TestMiddlewareOverhead(t *testing.T) {
	if os.Getenv("BERTH_OVERHEAD") != "1" {
		t.Skip("set BERTH_OVERHEAD=1 to measure the middlewares' overhead (about a minute)")
	}
	maxPct := 5.0
	if v := os.Getenv("BERTH_OVERHEAD_MAX"); v != "" {
		var err error
		if maxPct, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatal(err)
		}
	}
	aa := os.Getenv("BERTH_OVERHEAD_AA") == "1"
	measured := "wrapped"
	if aa {
		measured = "bare"
	}
	procs := [2]*overheadServer{startOverheadServer(t), startOverheadServer(t)}
	worst := -100.0
	for _, kind := range []string{"bearer", "basic", "anonymous"} {
		const pairs, perRound = 25, 2000
		var costs []float64
		var cpu [2][]float64 // bare, measured: CPU per request in each round
		for range pairs {
			var r [2]float64 // measured/bare in each round of the pair
			for round := range 2 {
				// Process round serves bare, the other the measured variant.
				procs[round].serve(t, "bare")
				procs[1-round].serve(t, measured)
				var before [2]time.Duration
				for i, p := range procs {
					before[i] = p.cpu(t)
				}
				loadAll(t, []loadTarget{procs[0].target(kind), procs[1].target(kind)}, perRound)
				var per [2]float64
				for i, p := range procs {
					per[i] = float64(p.cpu(t)-before[i]) / perRound
				}
				b, m := per[round], per[1-round]
				cpu[0], cpu[1] = append(cpu[0], b), append(cpu[1], m)
				r[round] = m / b
			}
			costs = append(costs, 100*(math.Sqrt(r[0]*r[1])-1))
		}
		pct := median(costs)
		slices.Sort(costs)
		worst = max(worst, pct)
		t.Logf("%-9s HTTP:       server CPU per request bare %6.1f µs, %s %6.1f µs: %+5.1f%% (median of %d pairs of rounds; middle half %+.1f%% to %+.1f%%)",
			kind, median(cpu[0])/1e3, measured, median(cpu[1])/1e3, pct, pairs, costs[len(costs)/4], costs[len(costs)*3/4])
	}
	if !aa {
		inProcess(t)
	}
	if worst > maxPct {
		t.Errorf("the middlewares cost a server up to %+.1f%% of its CPU per manifest GET, more than %.1f%%", worst, maxPct)
	}
}

// inProcess logs the CPU time per request of the handler alone, called
// from 16 goroutines, bare and wrapped in alternating rounds.
func inProcess(t *testing.T) {
	s := newRealServer(t)
	for _, kind := range []string{"bearer", "basic", "anonymous"} {
		req := s.manifestRequests()[kind]
		const rounds, perRound = 21, 2000
		var cpu [2][]float64
		for round := range rounds {
			for i := range 2 {
				v := (i + round) % 2
				h := []http.Handler{s.bare, s.wrapped}[v]
				var next atomic.Int64
				var wg sync.WaitGroup
				cpu0 := cpuTime()
				for range loadClients {
					wg.Go(func() {
						w := &discardWriter{h: http.Header{}}
						for next.Add(1) <= perRound {
							clear(w.h)
							h.ServeHTTP(w, req)
						}
					})
				}
				wg.Wait()
				cpu[v] = append(cpu[v], float64(cpuTime()-cpu0)/perRound)
			}
		}
		pct, cb, cw := medianCost(cpu)
		t.Logf("%-9s ServeHTTP:  CPU per request bare %6.1f µs, wrapped %6.1f µs: %+5.1f%% (median of %d rounds)",
			kind, cb/1e3, cw/1e3, pct, rounds)
	}
}

// medianCost returns the median over rounds of wrapped/bare - 1, in
// percent, and the median CPU times of each.
func medianCost(cpu [2][]float64) (pct, bare, wrapped float64) {
	ratios := make([]float64, len(cpu[0]))
	for i := range ratios {
		ratios[i] = cpu[1][i] / cpu[0][i]
	}
	return 100 * (median(ratios) - 1), median(cpu[0]), median(cpu[1])
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// overheadServer is a server process of TestMiddlewareOverhead.
type overheadServer struct {
	in   io.Writer
	out  *bufio.Scanner
	url  string
	reqs map[string]*http.Request
}

// startOverheadServer starts a server process and waits until it
// listens.
func startOverheadServer(t *testing.T) *overheadServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOverheadServer$")
	cmd.Env = append(os.Environ(), "BERTH_OVERHEAD_SERVER=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	s := &overheadServer{in: in, out: bufio.NewScanner(out)}
	var jwt string
	for s.url == "" || jwt == "" {
		line := s.line(t)
		if v, ok := strings.CutPrefix(line, "url "); ok {
			s.url = v
		} else if v, ok := strings.CutPrefix(line, "jwt "); ok {
			jwt = v
		}
	}
	s.reqs = (&realServer{jwt: jwt}).manifestRequests()
	return s
}

// line returns the next line the server prints for the test (the
// testing package prints its own).
func (s *overheadServer) line(t *testing.T) string {
	t.Helper()
	for s.out.Scan() {
		if line, ok := strings.CutPrefix(s.out.Text(), "overhead: "); ok {
			return line
		}
	}
	t.Fatalf("server process ended: %v", s.out.Err())
	return ""
}

// command sends the server process a command and returns its answer.
func (s *overheadServer) command(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := io.WriteString(s.in, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	return s.line(t)
}

// serve makes the server process serve variant, "bare" or "wrapped".
func (s *overheadServer) serve(t *testing.T, variant string) {
	t.Helper()
	if got := s.command(t, "serve "+variant); got != "serving "+variant {
		t.Fatalf("server process: unexpected answer %q", got)
	}
}

// cpu returns the CPU time the server process has used.
func (s *overheadServer) cpu(t *testing.T) time.Duration {
	t.Helper()
	got := s.command(t, "cpu")
	v, ok := strings.CutPrefix(got, "cpu ")
	ns, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil {
		t.Fatalf("server process: unexpected answer %q", got)
	}
	return time.Duration(ns)
}

func (s *overheadServer) target(kind string) loadTarget {
	r := s.reqs[kind]
	return loadTarget{URL: s.url + r.URL.Path, Header: r.Header}
}

// TestOverheadServer is a server process of TestMiddlewareOverhead: it
// runs only when started by it and serves until its standard input
// closes, answering the commands it reads there: "serve bare" and
// "serve wrapped" switch what it serves, "cpu" asks for its CPU time.
func TestOverheadServer(t *testing.T) {
	if os.Getenv("BERTH_OVERHEAD_SERVER") != "1" {
		t.Skip("a server process of TestMiddlewareOverhead")
	}
	s := newRealServer(t)
	var h atomic.Pointer[http.Handler]
	h.Store(&s.bare)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.Load()).ServeHTTP(w, r)
	}))
	defer srv.Close()
	fmt.Printf("overhead: url %s\noverhead: jwt %s\n", srv.URL, s.jwt)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch cmd := in.Text(); cmd {
		case "cpu":
			fmt.Printf("overhead: cpu %d\n", cpuTime().Nanoseconds())
		case "serve bare":
			h.Store(&s.bare)
			fmt.Println("overhead: serving bare")
		case "serve wrapped":
			h.Store(&s.wrapped)
			fmt.Println("overhead: serving wrapped")
		default:
			fmt.Printf("overhead: unknown command %q\n", cmd)
		}
	}
}

// loadClients is how many connections the load client keeps busy per
// server: a server under load, where throughput is what counts.
const loadClients = 16

// loadTarget is a GET the load client sends: its URL and header.
type loadTarget struct {
	URL    string
	Header http.Header
}

// loadAll sends n GETs to every target at once, loadClients connections
// each, from a client process (this test binary, in TestLoadClient).
func loadAll(t *testing.T, targets []loadTarget, n int) {
	t.Helper()
	js, _ := json.Marshal(targets)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadClient$")
	cmd.Env = append(os.Environ(), "BERTH_LOAD_TARGETS="+string(js), "BERTH_LOAD_N="+strconv.Itoa(n))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load client: %v\n%s", err, out)
	}
}

// TestLoadClient is the client process of TestMiddlewareOverhead: it
// runs only when started by it.
func TestLoadClient(t *testing.T) {
	js := os.Getenv("BERTH_LOAD_TARGETS")
	if js == "" {
		t.Skip("the client process of TestMiddlewareOverhead")
	}
	var targets []loadTarget
	if err := json.Unmarshal([]byte(js), &targets); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("BERTH_LOAD_N"))
	tr := &http.Transport{MaxIdleConnsPerHost: loadClients}
	c := &http.Client{Transport: tr}
	get := func(target loadTarget) {
		req, _ := http.NewRequest(http.MethodGet, target.URL, nil)
		req.Header = target.Header.Clone()
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", target.URL, resp.StatusCode)
		}
	}
	var wg sync.WaitGroup
	for _, target := range targets { // open the connections first
		for range loadClients {
			wg.Go(func() { get(target) })
		}
	}
	wg.Wait()
	for _, target := range targets {
		var next atomic.Int64
		for range loadClients {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					get(target)
				}
			})
		}
	}
	wg.Wait()
}
