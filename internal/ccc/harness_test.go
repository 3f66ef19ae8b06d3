package ccc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/opencontainers/go-digest"
)

// build caches examples/registryd, built once per run.
var build struct {
	sync.Once
	path string
	err  error
}

// registrydPath returns the path of examples/registryd, built once per run,
// or the binary named by BERTH_CCC_REGISTRYD.
func registrydPath(tb testing.TB) string {
	tb.Helper()
	build.Do(func() {
		if bin := os.Getenv("BERTH_CCC_REGISTRYD"); bin != "" {
			build.path = bin
			return
		}
		out := filepath.Join(workDir, "registryd")
		cmd := exec.Command("go", "build", "-o", out, "github.com/berth-dev/berth/examples/registryd")
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build examples/registryd: %v\n%s", err, b)
			return
		}
		build.path = out
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.path
}

// registrydHelp returns registryd's flag documentation (its -h output), so
// that tests can tell which mechanisms this build offers.
func registrydHelp(tb testing.TB) string {
	tb.Helper()
	bin := registrydPath(tb)
	help.Do(func() {
		out, _ := exec.Command(bin, "-h").CombinedOutput()
		help.text = string(out)
	})
	return help.text
}

var help struct {
	sync.Once
	text string
}

// hasFlag reports whether registryd accepts --name.
func hasFlag(tb testing.TB, name string) bool {
	tb.Helper()
	return regexp.MustCompile(`(?m)^\s*-` + regexp.QuoteMeta(name) + `\b`).MatchString(registrydHelp(tb))
}

// server is a running registryd.
type server struct {
	// URL is https://host:port; Host is host:port.
	URL, Host string
	// Data is its --data directory.
	Data string
	// CAFile names the CA of its certificate.
	CAFile string
	// Admin is the bootstrap administrator.
	Admin identity

	cmd    *exec.Cmd
	client *http.Client
	pool   *x509.CertPool
	done   chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
}

// serverOptions adjusts a registryd start.
type serverOptions struct {
	// Addr is --addr; default 127.0.0.1:0.
	Addr string
	// Data is --data; default a new directory.
	Data string
	// Args are further flags.
	Args []string
	// Env are further environment variables.
	Env []string
	// Client adjusts the client's TLS configuration (client certificates).
	Client func(*tls.Config)
	// RotateSource makes the client connect anew for every request, each
	// time from another loopback source address, so that per-address
	// limits (failed-login throttling) do not apply across requests.
	RotateSource bool
	// Source is the loopback address the client connects from.
	Source string
}

var sourceSeq atomic.Uint32

// rotatingDial dials from a new loopback source address each time.
func rotatingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	n := sourceSeq.Add(1)
	src := net.IPv4(127, 1+byte(n>>16%200), byte(n>>8), byte(n))
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	return d.DialContext(ctx, network, addr)
}

var (
	reStartURL = regexp.MustCompile(`msg="registryd starting" url=(\S+)`)
	reCAFile   = regexp.MustCompile(`trust its CA: (\S+)`)
)

// startServer starts registryd with a fresh data directory and TLS, and
// stops it when tb ends (tb nil: the caller stops it). It returns an error
// holding registryd's output when the server exits or does not start
// within a minute.
func startServer(tb testing.TB, o serverOptions) (*server, error) {
	if tb != nil {
		tb.Helper()
	}
	var bin string
	if tb != nil {
		bin = registrydPath(tb)
	} else {
		bin = build.path // the caller ran registrydPath first
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Data == "" {
		d, err := os.MkdirTemp(workDir, "data-")
		if err != nil {
			return nil, err
		}
		o.Data = d
	}
	s := &server{Data: o.Data, Admin: identity{Name: "admin", User: "admin", Secret: randomHex(16)}, done: make(chan struct{})}
	args := append([]string{"--addr", o.Addr, "--data", o.Data}, o.Args...)
	s.cmd = exec.Command(bin, args...)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	s.cmd.Env = append(append(env, "BERTH_ADMIN_PASSWORD="+s.Admin.Secret), o.Env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout = s.cmd.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			if m := reCAFile.FindStringSubmatch(line); m != nil {
				s.CAFile = m[1]
			}
			if m := reStartURL.FindStringSubmatch(line); m != nil && !signalled {
				s.URL = m[1]
				signalled = true
				close(ready)
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if tb != nil {
		tb.Cleanup(func() {
			s.stop()
			if tb.Failed() {
				tb.Logf("registryd log:\n%s", s.Log())
			}
		})
	}
	select {
	case <-ready:
	case <-s.done:
		return nil, &startError{Output: s.Log(), State: s.cmd.ProcessState.String()}
	case <-time.After(time.Minute):
		s.stop()
		return nil, &startError{Output: s.Log(), State: "did not start within a minute"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Host = strings.TrimPrefix(s.URL, "https://")
	if !strings.HasPrefix(s.URL, "https://") {
		s.stop()
		return nil, fmt.Errorf("registryd serves %s, not HTTPS", s.URL)
	}
	s.pool = x509.NewCertPool()
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.pool.AppendCertsFromPEM(pem)
	}
	cfg := &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS13}
	if o.Client != nil {
		o.Client(cfg)
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}
	if o.Source != "" {
		d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(o.Source)}}
		tr.DialContext = d.DialContext
	}
	if o.RotateSource {
		tr = &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, DialContext: rotatingDial}
	}
	s.client = &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s, nil
}

// mustStart is startServer that fails tb on error.
func mustStart(tb testing.TB, o serverOptions) *server {
	tb.Helper()
	s, err := startServer(tb, o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// startError reports a registryd that exited or hung at start-up.
type startError struct {
	Output, State string
}

func (e *startError) Error() string {
	return fmt.Sprintf("registryd did not start (%s):\n%s", e.State, e.Output)
}

// Log returns registryd's output so far.
func (s *server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// PID returns the process ID.
func (s *server) PID() int { return s.cmd.Process.Pid }

// stop interrupts registryd and waits for it to exit.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// TLSConfig returns a client configuration trusting the server's CA.
func (s *server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS13}
}

// identity is who a request is made as: HTTP Basic credentials (the admin
// or a registry token), or nobody.
type identity struct {
	Name         string
	User, Secret string
	// TokenID is the registry token's ID, for revocation.
	TokenID string
}

var anonymous = identity{Name: "anonymous"}

// response is a read response.
type response struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string
}

// errorCodes returns the codes of a JSON error body {"errors":[{"code"}]}.
func (r *response) errorCodes() []string {
	var body struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.Body, &body) != nil {
		return nil
	}
	var out []string
	for _, e := range body.Errors {
		out = append(out, e.Code)
	}
	return out
}

var requestSeq atomic.Int64

// newRequestID returns a request ID unique to this run, sent as
// X-Request-Id so that the access log's records can be found.
func newRequestID() string {
	return fmt.Sprintf("ccc-%d-%s", requestSeq.Add(1), randomHex(4))
}

// request makes a request as id; header holds pairs of names and values.
func (s *server) request(id identity, method, path string, body []byte, header ...string) (*response, error) {
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = s.URL + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if id.User != "" {
		req.SetBasicAuth(id.User, id.Secret)
	}
	rid := newRequestID()
	req.Header.Set("X-Request-Id", rid)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b, RequestID: rid}, nil
}

// do is request that fails tb on a transport error.
func (s *server) do(tb testing.TB, id identity, method, path string, body []byte, header ...string) *response {
	tb.Helper()
	r, err := s.request(id, method, path, body, header...)
	if err != nil {
		tb.Fatalf("%s %s as %s: %v", method, path, id.Name, err)
	}
	return r
}

// createToken creates a registry token as the admin.
func (s *server) createToken(tb testing.TB, name, expiresIn string, scopes ...string) identity {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes, "expiresIn": expiresIn})
	r := s.do(tb, s.Admin, http.MethodPost, "/api/v1/tokens", body, "Content-Type", "application/json")
	if r.Status != http.StatusCreated {
		tb.Fatalf("POST /api/v1/tokens %s: %d %s", name, r.Status, r.Body)
	}
	var tok struct {
		ID, Username, Secret string
	}
	if err := json.Unmarshal(r.Body, &tok); err != nil || tok.Username == "" || tok.Secret == "" {
		tb.Fatalf("POST /api/v1/tokens %s: unexpected body %s (%v)", name, r.Body, err)
	}
	return identity{Name: name, User: tok.Username, Secret: tok.Secret, TokenID: tok.ID}
}

// pushBlob uploads data to repo (POST, then PUT with the digest) as id and
// returns its digest; it fails tb unless the upload succeeds.
func (s *server) pushBlob(tb testing.TB, id identity, repo string, data []byte) digest.Digest {
	tb.Helper()
	d := digest.FromBytes(data)
	r := s.do(tb, id, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if r.Status != http.StatusAccepted {
		tb.Fatalf("start upload to %s as %s: %d %s", repo, id.Name, r.Status, r.Body)
	}
	loc := s.resolve(tb, r.Header.Get("Location"))
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r = s.do(tb, id, http.MethodPut, loc+sep+"digest="+url.QueryEscape(d.String()), data, "Content-Type", "application/octet-stream")
	if r.Status != http.StatusCreated {
		tb.Fatalf("finish upload to %s as %s: %d %s", repo, id.Name, r.Status, r.Body)
	}
	return d
}

// resolve makes a Location header absolute.
func (s *server) resolve(tb testing.TB, loc string) string {
	tb.Helper()
	base, _ := url.Parse(s.URL + "/")
	u, err := base.Parse(loc)
	if err != nil || loc == "" {
		tb.Fatalf("bad Location %q", loc)
	}
	return u.String()
}

// image is a pushed image.
type image struct {
	Manifest []byte
	Digest   digest.Digest
	Config   digest.Digest
	Layers   []digest.Digest
}

// imageManifest returns the OCI manifest of a config and layers.
func imageManifest(config []byte, layers ...[]byte) []byte {
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json",
		desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(config), len(config)}, []desc{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar+gzip", digest.FromBytes(l), len(l)})
	}
	b, _ := json.Marshal(m)
	return b
}

// pushImage pushes a config, the layers and their manifest, tagged tag,
// as id.
func (s *server) pushImage(tb testing.TB, id identity, repo, tag string, layers ...[]byte) image {
	tb.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{},"created":"` + randomHex(8) + `"}`)
	img := image{Config: s.pushBlob(tb, id, repo, config)}
	for _, l := range layers {
		img.Layers = append(img.Layers, s.pushBlob(tb, id, repo, l))
	}
	img.Manifest = imageManifest(config, layers...)
	img.Digest = digest.FromBytes(img.Manifest)
	r := s.do(tb, id, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, img.Manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if r.Status != http.StatusCreated {
		tb.Fatalf("PUT manifest %s:%s as %s: %d %s", repo, tag, id.Name, r.Status, r.Body)
	}
	return img
}

// accessRecords reads the server's access log (DATA/access-*.log).
func (s *server) accessRecords(tb testing.TB) []*events.AccessRecord {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(s.Data, "access-*.log"))
	var out []*events.AccessRecord
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			rec, err := events.DecodeAccessRecord(line)
			if err != nil {
				tb.Fatalf("%s: %v", f, err)
			}
			out = append(out, rec)
		}
	}
	return out
}

// accessRecord waits up to two seconds for the access record of the
// request with the given ID.
func (s *server) accessRecord(tb testing.TB, requestID string) (*events.AccessRecord, bool) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, r := range s.accessRecords(tb) {
			if r.RequestID == requestID {
				return r, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listeners returns the addresses of the TCP sockets the process with
// the given PID listens on, read from /proc (Linux).
func listeners(pid int) ([]string, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			addr, err := procAddr(f[1])
			if err != nil {
				return nil, err
			}
			out = append(out, addr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no listening TCP socket found")
	}
	return out, nil
}

// procAddr decodes a /proc/net/tcp address such as "0100007F:1388".
func procAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	raw, err2 := hex.DecodeString(h)
	if !ok || err != nil || err2 != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad /proc/net address %q", s)
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(int(port))), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
