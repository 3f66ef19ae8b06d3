package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testsvc"
)

// workDir holds what the tests build once per run (registryd, the
// conformance binary).
var workDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}

// skipOrFail skips the test with msg, or fails it under CI=true, where a
// test must not pass by skipping.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if testsvc.InCI() {
		t.Fatalf("%s (CI=true: failing instead of skipping)", msg)
	}
	t.Skip(msg)
}

// once caches the result of a build shared by the tests.
type once struct {
	sync.Once
	path string
	err  error
}

var registrydBin once

// registryd returns the path of examples/registryd, built once per run.
func registryd(t testing.TB) string {
	t.Helper()
	registrydBin.Do(func() {
		out := filepath.Join(workDir, "registryd")
		cmd := exec.Command("go", "build", "-o", out, "github.com/berth-dev/berth/examples/registryd")
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			registrydBin.err = fmt.Errorf("go build examples/registryd: %v\n%s", err, b)
			return
		}
		registrydBin.path = out
	})
	if registrydBin.err != nil {
		t.Fatal(registrydBin.err)
	}
	return registrydBin.path
}

// server is a running registryd.
type server struct {
	// Host is host:port, as image references name it.
	Host string
	// URL is scheme://host:port.
	URL string
	// TLS is set when the server speaks HTTPS; CAFile then names the CA
	// that signed its certificate and CertDir a directory holding it as
	// ca.crt (the layout skopeo's --cert-dir flags read).
	TLS     bool
	CAFile  string
	CertDir string
	// User and Password are the admin credentials.
	User, Password string
	// Stop stops the server before the test ends (it is stopped then
	// anyway).
	Stop func()
}

// Client returns an HTTP client that trusts the server's certificate.
func (s *server) Client(t testing.TB) *http.Client {
	t.Helper()
	if !s.TLS {
		return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute}
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

var (
	reStartURL = regexp.MustCompile(`msg="registryd starting" url=(\S+)`)
	reCAFile   = regexp.MustCompile(`trust its CA: (\S+)`)
)

// startRegistryd runs examples/registryd on a free loopback port with a
// fresh data directory (SQLite metadata, file bucket), over TLS with its
// generated certificate or, when plainHTTP, with --insecure-http. It stops
// the server when the test ends.
func startRegistryd(t testing.TB, plainHTTP bool) *server {
	t.Helper()
	return startRegistrydWith(t, plainHTTP, nil, nil)
}

// startRegistrydWith is startRegistryd with more flags and environment
// variables.
func startRegistrydWith(t testing.TB, plainHTTP bool, extraArgs, extraEnv []string) *server {
	t.Helper()
	bin := registryd(t)
	data := t.TempDir()
	s := &server{User: "admin", Password: randomHex(t, 16), TLS: !plainHTTP}
	args := []string{"--addr", "127.0.0.1:0", "--data", data}
	if plainHTTP {
		args = append(args, "--insecure-http")
	}
	cmd := exec.Command(bin, append(args, extraArgs...)...)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, "BERTH_ADMIN_PASSWORD="+s.Password), extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			if m := reCAFile.FindStringSubmatch(line); m != nil {
				s.CAFile = m[1]
			}
			if m := reStartURL.FindStringSubmatch(line); m != nil && !signalled {
				s.URL = m[1]
				signalled = true
				close(found)
			}
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	s.Stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			mu.Lock()
			t.Logf("registryd log:\n%s", lastLines(log.String(), 60))
			mu.Unlock()
		}
	})
	select {
	case <-found:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("registryd did not start:\n%s", log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	s.Host = strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://")
	if s.TLS {
		if s.CAFile == "" {
			t.Fatalf("registryd named no CA file:\n%s", log.String())
		}
		s.CertDir = t.TempDir()
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.CertDir, "ca.crt"), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until it answers.
	c := s.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(s.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
			err = fmt.Errorf("GET /v2/ without credentials: %s, want 401", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("registryd at %s: %v", s.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// toolDirs are where .ci/e2e-tools installs clients, searched after PATH.
func toolDirs() []string {
	var dirs []string
	if d := os.Getenv("BERTH_TOOLS_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".cache", "berth-tools", "bin"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

// lookTool returns the path of a client, skipping (or, under CI, failing)
// the test when it is not installed.
func lookTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range toolDirs() {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	skipOrFail(t, "%s is not installed (install it with `bash .ci/e2e-tools`)", name)
	return ""
}

// cli runs one client with an isolated home directory.
type cli struct {
	t    testing.TB
	path string
	env  []string
	// dir is the working directory; a temporary one by default.
	dir string
}

func newCLI(t testing.TB, name string, extraEnv ...string) *cli {
	t.Helper()
	p := lookTool(t, name)
	home := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+home,
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
	)
	_ = os.MkdirAll(filepath.Join(home, "run"), 0o700)
	env = append(env, extraEnv...)
	return &cli{t: t, path: p, env: env, dir: t.TempDir()}
}

// run runs the client and returns its standard output; it fails the test
// when the command fails.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", filepath.Base(c.path), strings.Join(redactArgs(args), " "), err)
	}
	return out
}

// runStdin is run with standard input.
func (c *cli) runStdin(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.exec(stdin, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", filepath.Base(c.path), strings.Join(redactArgs(args), " "), err)
	}
	return out
}

// try runs the client and returns its output and an error carrying its
// standard error when it fails.
func (c *cli) try(args ...string) (string, error) {
	return c.exec("", args...)
}

func (c *cli) exec(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if d := time.Since(start); d > 3*time.Second {
		c.t.Logf("slow: %s %s took %s", filepath.Base(c.path), strings.Join(redactArgs(args), " "), d.Round(time.Millisecond))
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%w\nstdout: %s\nstderr: %s", err, lastLines(stdout.String(), 20), lastLines(stderr.String(), 40))
	}
	return stdout.String(), nil
}

// redactArgs hides the values of password flags in messages.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		switch {
		case hide:
			out[i], hide = "***", false
		case a == "-p" || a == "--password" || a == "--pass" || a == "--creds" || a == "--src-creds" || a == "--dest-creds":
			out[i], hide = a, true
		case strings.HasPrefix(a, "--password=") || strings.HasPrefix(a, "--creds=") || strings.HasPrefix(a, "--pass="):
			k, _, _ := strings.Cut(a, "=")
			out[i] = k + "=***"
		default:
			out[i] = a
		}
	}
	return out
}
