package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Registry names, in the order a run measures them.
const (
	nameDistribution = "distribution"
	nameGGCR         = "ggcr"
	nameRegistryd    = "registryd"
)

// server is one registry running as a child process.
type server struct {
	name    string
	cmd     *exec.Cmd
	baseURL string
	dataDir string
	logPath string
	user    string
	pass    string
	exited  chan struct{}
	waitErr error
}

// children holds every process started by this run so that all of them are
// killed on any exit path: normal return, error, panic, SIGINT or SIGTERM.
var children struct {
	sync.Mutex
	procs map[int]*exec.Cmd
}

func track(cmd *exec.Cmd) {
	children.Lock()
	defer children.Unlock()
	if children.procs == nil {
		children.procs = map[int]*exec.Cmd{}
	}
	children.procs[cmd.Process.Pid] = cmd
}

func untrack(pid int) {
	children.Lock()
	defer children.Unlock()
	delete(children.procs, pid)
}

// killChildren SIGKILLs the process group of every tracked child.
func killChildren() {
	children.Lock()
	defer children.Unlock()
	for pid := range children.procs {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		delete(children.procs, pid)
	}
}

// berthRoot returns the directory of the berth module as this module's
// replace directive names it (../../.. in the tree).
func berthRoot(ctx context.Context) (string, error) {
	const mod = "github.com/berth-dev/berth"
	self := selfDir()
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json")
	cmd.Dir = self
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod edit -json: %w", err)
	}
	var gm struct {
		Replace []struct {
			Old struct{ Path string }
			New struct{ Path string }
		}
	}
	if err := json.Unmarshal(out, &gm); err != nil {
		return "", fmt.Errorf("go mod edit -json: %w", err)
	}
	for _, r := range gm.Replace {
		if r.Old.Path == mod {
			d := r.New.Path
			if !filepath.IsAbs(d) {
				d = filepath.Join(self, d)
			}
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
				return "", fmt.Errorf("replace %s => %s: %w", mod, r.New.Path, err)
			}
			return d, nil
		}
	}
	return "", fmt.Errorf("%s/go.mod has no replace directive for %s", self, mod)
}

// selfDir is the directory of this benchmark module: the working directory
// of `go run .` and of `go test`, or found from the berth module root
// above the working directory.
func selfDir() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if bytes.Contains(b, []byte("module github.com/berth-dev/berth/internal/bench/registrybench")) {
				return d
			}
			if bytes.Contains(b, []byte("module github.com/berth-dev/berth\n")) {
				return filepath.Join(d, "internal", "bench", "registrybench")
			}
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// checkSelfDir reports a working directory outside the berth tree early.
func checkSelfDir() error {
	d := selfDir()
	if _, err := os.Stat(filepath.Join(d, "cmd", "distribution")); err != nil {
		return fmt.Errorf("run registrybench from internal/bench/registrybench in the berth tree (looked in %s)", d)
	}
	return nil
}

// goBuild builds pkg into out, run from dir so that dir's go.mod decides
// the dependency versions.
func goBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return nil
}

// registrydDir returns the berth module root and whether
// examples/registryd exists in it.
func registrydDir(ctx context.Context) (root string, ok bool, err error) {
	root, err = berthRoot(ctx)
	if err != nil {
		return "", false, err
	}
	st, err := os.Stat(filepath.Join(root, "examples", "registryd"))
	return root, err == nil && st.IsDir(), nil
}

// buildServer builds the binary for one registry into binDir.
//
// The peers are built from this module (cmd/distribution, cmd/ggcr), which
// keeps their dependencies out of the berth go.mod. registryd is built from
// the berth module root, with exactly the dependency versions
// `go run ./examples/registryd` uses.
func buildServer(ctx context.Context, name, binDir, registrydBin string) (string, error) {
	out := filepath.Join(binDir, name)
	switch name {
	case nameDistribution:
		return out, goBuild(ctx, selfDir(), "./cmd/distribution", out)
	case nameGGCR:
		return out, goBuild(ctx, selfDir(), "./cmd/ggcr", out)
	case nameRegistryd:
		if registrydBin != "" {
			return registrydBin, nil
		}
		root, ok, err := registrydDir(ctx)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("%s/examples/registryd does not exist", root)
		}
		return out, goBuild(ctx, root, "./examples/registryd", out)
	}
	return "", fmt.Errorf("unknown registry %q", name)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startServer starts the registry binary bin with a fresh data directory
// under workDir and waits until /v2/ answers.
func startServer(ctx context.Context, name, bin, workDir string, tr http.RoundTripper, startTimeout time.Duration) (*server, error) {
	dataDir, err := os.MkdirTemp(workDir, name+"-data-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &server{name: name, baseURL: "http://" + addr, dataDir: dataDir, exited: make(chan struct{})}
		var args []string
		env := os.Environ()
		switch name {
		case nameDistribution:
			args = []string{"-addr", addr, "-root", filepath.Join(dataDir, "storage")}
			// No OpenTelemetry collector runs here: without this the
			// exporter retries against localhost:4318 for every span batch.
			env = append(env, "OTEL_TRACES_EXPORTER=none")
		case nameGGCR:
			args = []string{"-addr", addr}
		case nameRegistryd:
			s.user, s.pass = "admin", randomPassword()
			args = []string{"--addr", addr, "--data", filepath.Join(dataDir, "berth-data"), "--insecure-http"}
			env = append(env, "BERTH_ADMIN_PASSWORD="+s.pass)
		}
		s.logPath = filepath.Join(dataDir, fmt.Sprintf("server-%d.log", attempt))
		logf, err := os.Create(s.logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = dataDir
		cmd.Env = env
		cmd.Stdout = logf
		cmd.Stderr = logf
		// Own process group, so the whole group can be killed; SIGKILL if
		// this process dies without running its cleanup.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		track(cmd)
		s.cmd = cmd
		go func() {
			s.waitErr = cmd.Wait()
			logf.Close()
			close(s.exited)
		}()
		if err := s.waitReady(ctx, tr, startTimeout); err != nil {
			lastErr = err
			s.stop()
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

func (s *server) waitReady(ctx context.Context, tr http.RoundTripper, timeout time.Duration) error {
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up (%v); log %s:\n%s", s.name, s.waitErr, s.logPath, tail(s.logPath, 2000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/v2/", nil)
		if resp, err := hc.Do(req); err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer on %s within %s; log %s:\n%s", s.name, s.baseURL, timeout, s.logPath, tail(s.logPath, 2000))
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stop ends the server: SIGTERM, then SIGKILL after a grace period.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-s.exited
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	untrack(pid)
}

// procStats are a process's memory and CPU figures from /proc.
type procStats struct {
	hwmKiB int64   // VmHWM: peak resident set size
	rssKiB int64   // VmRSS
	cpuSec float64 // user + system CPU time
}

func (s *server) stats() (procStats, error) {
	var st procStats
	pid := s.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmHWM":
			st.hwmKiB = n
		case "VmRSS":
			st.rssKiB = n
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) > 12 {
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		st.cpuSec = float64(ut+stt) / clockTicks
	}
	return st, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100.0
