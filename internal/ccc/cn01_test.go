package ccc_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverListeners returns every TCP port the server listens on.
func serverListeners(a *assessment, s *server) []string {
	a.t.Helper()
	addrs, err := listeners(s.PID())
	if err != nil {
		a.Fatalf("enumerate the listening sockets of registryd (pid %d) from /proc: %v", s.PID(), err)
	}
	return addrs
}

// tlsVersionName names a TLS version.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// handshake dials addr and completes a TLS handshake limited to
// [minV, maxV], returning the negotiated version.
func handshake(addr string, minV, maxV uint16, cfg *tls.Config) (uint16, error) {
	c := &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV} // only the protocol is under test here
	if cfg != nil {
		c = cfg.Clone()
		c.MinVersion, c.MaxVersion = minV, maxV
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, c)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().Version, nil
}

func TestCCC_Core_CN01_AR01_C01_TR01_TLS13Only(t *testing.T) {
	a := assess(t)
	t.Parallel()
	// Every listener registryd can open: the registry port and, when the
	// build offers it, the metrics port.
	opts := serverOptions{}
	if hasFlag(t, "metrics-addr") {
		opts.Args = append(opts.Args, "--metrics-addr", freeAddr(t))
		a.Evidence("registryd started with --metrics-addr so that its optional metrics listener is assessed too")
	}
	s := mustStart(t, opts)
	addrs := serverListeners(a, s)
	a.Evidence("registryd (pid %d) listens on %s (from /proc)", s.PID(), strings.Join(addrs, ", "))
	for _, addr := range addrs {
		v, err := handshake(addr, tls.VersionTLS13, tls.VersionTLS13, nil)
		if err != nil {
			a.Gap("%s does not complete a TLS 1.3 handshake: %v", addr, err)
			continue
		}
		a.Evidence("%s: TLS 1.3 handshake completed (negotiated %s)", addr, tlsVersionName(v))
		for _, old := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12} {
			if v, err := handshake(addr, old, old, nil); err == nil {
				a.Errorf("%s accepted a %s handshake (negotiated %s)", addr, tlsVersionName(old), tlsVersionName(v))
			}
		}
		a.Evidence("%s: handshakes limited to TLS 1.0, 1.1 and 1.2 are refused", addr)
	}
	if hasFlag(t, "tls-min-version") {
		a.Evidence("registryd also offers --tls-min-version 1.2 for old clients (the default is 1.3); a deployment that lowers it does not meet this requirement")
	}
	r := s.do(t, anonymous, http.MethodGet, "/v2/", nil)
	if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		a.Errorf("GET /v2/ over TLS 1.3 on %s: %d, want 401 with a challenge", s.Host, r.Status)
	}
	a.Evidence("GET /v2/ over TLS 1.3 on %s: %d with WWW-Authenticate %q (it is the registry)", s.Host, r.Status, r.Header.Get("WWW-Authenticate"))
}

func TestCCC_Core_CN01_AR02_C01_TR02_NoSSH(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	addrs := serverListeners(a, f.server)
	for _, addr := range addrs {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			a.Fatalf("dial %s: %v", addr, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		b, err := io.ReadAll(io.LimitReader(conn, 256))
		conn.Close()
		var ne net.Error
		if len(b) > 0 {
			if strings.HasPrefix(string(b), "SSH-") {
				a.Errorf("%s sent an SSH banner %q: an SSH surface exists and must be assessed for SSHv2", addr, b)
			} else {
				a.Errorf("%s sent %d bytes before the client spoke", addr, len(b))
			}
			continue
		}
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			a.Errorf("%s: read: %v", addr, err)
		}
		if _, err := handshake(addr, tls.VersionTLS13, tls.VersionTLS13, nil); err != nil {
			a.Errorf("%s does not answer a TLS ClientHello: %v", addr, err)
		}
		a.Evidence("%s sent nothing within 1 s of connecting (no SSH banner) and answers a TLS ClientHello", addr)
	}
	a.NotApplicable("Berth exposes no SSH service: all %d listening port(s) of registryd speak TLS and none announces SSH", len(addrs))
}

func TestCCC_Core_CN01_AR03_C01_TR03_PlaintextRefused(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	addrs := serverListeners(a, f.server)
	for _, addr := range addrs {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			a.Fatalf("dial %s: %v", addr, err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = fmt.Fprintf(conn, "GET /v2/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			a.Evidence("%s: plaintext GET /v2/ got no HTTP response (%v)", addr, err)
			conn.Close()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		conn.Close()
		switch {
		case res.StatusCode != http.StatusBadRequest:
			a.Errorf("%s: plaintext GET /v2/ answered %d %q: unencrypted traffic is served", addr, res.StatusCode, body)
		case res.Header.Get("Docker-Distribution-Api-Version") != "" || strings.Contains(string(body), "errors"):
			a.Errorf("%s: plaintext GET /v2/ reached the registry: %d %q", addr, res.StatusCode, body)
		default:
			a.Evidence("%s: plaintext GET /v2/ refused by the TLS layer: %d %q", addr, res.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	a.Evidence("the default configuration opens %d port(s), all TLS: no plaintext listener and no redirect listener", len(addrs))
	if h := f.do(t, anonymous, http.MethodGet, "/v2/", nil).Header.Get("Strict-Transport-Security"); h != "" {
		a.Evidence("HTTPS responses carry Strict-Transport-Security: %s, so browsers and HSTS-aware clients never fall back to plain HTTP", h)
	}
	if hasFlag(t, "insecure-http") {
		a.Evidence("plain HTTP exists only as the opt-in --insecure-http (documented for loopback and tests; registryd warns when it is used on a non-loopback address)")
	}
}

// ianaPorts reads testdata/iana-ports.csv: port/transport → service.
func ianaPorts(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "iana-ports.csv"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			t.Fatalf("iana-ports.csv: bad line %q", line)
		}
		m[f[0]+"/"+f[1]] = f[2]
	}
	return m
}

func TestCCC_Core_CN01_AR07_C01_TR07_IANAPorts(t *testing.T) {
	a := assess(t)
	t.Parallel()
	iana := ianaPorts(t)
	a.Evidence("registryd's documented default --addr is 127.0.0.1:5000; IANA assigns 5000/tcp to %q, not https, so a deployment on the default port deviates; the CCC profile binds 443", iana["5000/tcp"])
	// The CCC profile: port 443, on a loopback address of its own.
	addr := fmt.Sprintf("127.%d.%d.%d:443", 100+time.Now().Nanosecond()%100, os.Getpid()%250+1, 1+time.Now().Second()%250)
	s, err := startServer(t, serverOptions{Addr: addr})
	if err != nil {
		var se *startError
		if errors.As(err, &se) && (strings.Contains(se.Output, "permission denied") || errors.Is(err, syscall.EACCES)) {
			a.Review("could not bind %s to assess the CCC profile (binding a port below 1024 needs privileges here); on other ports IANA's assignment is not https", addr)
			return
		}
		a.Fatalf("start registryd on %s: %v", addr, err)
	}
	for _, l := range serverListeners(a, s) {
		_, port, _ := net.SplitHostPort(l)
		svc, ok := iana[port+"/tcp"]
		if !ok {
			a.Errorf("%s: port %s/tcp is not in the IANA table", l, port)
			continue
		}
		if svc != "https" {
			a.Errorf("%s: IANA assigns %s/tcp to %q, but the port serves https", l, port, svc)
			continue
		}
		if _, err := handshake(l, tls.VersionTLS13, tls.VersionTLS13, nil); err != nil {
			a.Errorf("%s: IANA assigns %s/tcp to https, but it does not speak TLS: %v", l, port, err)
			continue
		}
		a.Evidence("%s: port %s/tcp, assigned by IANA to %q, speaks TLS 1.3 and HTTP", l, port, svc)
	}
	r := s.do(t, anonymous, http.MethodGet, "/v2/", nil)
	if r.Status != http.StatusUnauthorized {
		a.Errorf("GET https://%s/v2/: %d, want 401", addr, r.Status)
	}
	a.Evidence("with --addr %s (the CCC profile) every listener's port carries its IANA protocol; GET /v2/ → %d", addr, r.Status)
}
