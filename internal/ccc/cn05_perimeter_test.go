package ccc_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += n
	return n, err
}

// perimeterServer starts registryd allowing only 127.0.0.2, reached from
// there, or reports the gap when this build has no perimeter.
func perimeterServer(t *testing.T, a *assessment) *server {
	t.Helper()
	if !hasFlag(t, "allowed-clients") {
		a.Gap("registryd has no trust perimeter: it serves every client that can reach its port")
		t.SkipNow()
	}
	s := mustStart(t, serverOptions{Args: []string{"--allowed-clients", "127.0.0.2/32"}, Source: "127.0.0.2"})
	a.Evidence("registryd started with --allowed-clients 127.0.0.2/32 on %s", s.Host)
	return s
}

// dialOutside connects to addr from 127.0.0.3, outside the perimeter.
// A nil connection means the reset arrived before the dial returned.
func dialOutside(t *testing.T, addr string) *countingConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s from 127.0.0.3: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	return &countingConn{Conn: c}
}

func TestCCC_Core_CN05_AR04_C05_TR04_TrustPerimeter(t *testing.T) {
	a := assess(t)
	t.Parallel()
	s := perimeterServer(t, a)
	img := s.pushImage(t, s.Admin, "team-a/app", "v1", randomBytes(128))
	reader := s.createToken(t, "reader", "1h", "repository:team-a/**:pull")
	path := "/v2/team-a/app/manifests/" + img.Digest.String()
	if r := s.do(t, reader, http.MethodGet, path, nil); r.Status != http.StatusOK {
		a.Errorf("from 127.0.0.2 (inside) with reader credentials: GET manifest → %d, want 200", r.Status)
	} else {
		a.Evidence("from 127.0.0.2 (inside) with reader credentials: GET manifest → 200")
	}
	for _, xff := range []string{"", "127.0.0.2"} {
		c := dialOutside(t, s.Host)
		if c == nil {
			a.Evidence("from 127.0.0.3 (outside, X-Forwarded-For %q): the connection was reset during connect", xff)
			continue
		}
		tc := tls.Client(c, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
		req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n", path, s.Host, basicAuth(reader))
		if xff != "" {
			req += "X-Forwarded-For: " + xff + "\r\n"
		}
		err := tc.Handshake()
		if err == nil {
			_, _ = io.WriteString(tc, req+"\r\n")
			var b []byte
			b, err = io.ReadAll(tc)
			if len(b) > 0 {
				a.Errorf("from 127.0.0.3 (outside, X-Forwarded-For %q) the request was answered: %q", xff, truncate(b))
				tc.Close()
				continue
			}
		}
		tc.Close()
		if err == nil {
			a.Errorf("from 127.0.0.3 (outside): the connection completed without an answer")
			continue
		}
		a.Evidence("from 127.0.0.3 (outside) with the same reader credentials (X-Forwarded-For %q): refused, the connection was reset before the TLS handshake completed (%v)", xff, err)
	}
}

// basicAuth returns the Basic credentials of id.
func basicAuth(id identity) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(id.User, id.Secret)
	return r.Header.Get("Authorization")[len("Basic "):]
}

func TestCCC_Core_CN05_AR05_C05_TR05_PerimeterSilent(t *testing.T) {
	a := assess(t)
	t.Parallel()
	s := perimeterServer(t, a)
	// A TLS ClientHello from outside: no ServerHello, no byte at all.
	if c := dialOutside(t, s.Host); c == nil {
		a.Evidence("from 127.0.0.3 (outside): the connection was reset during connect, before a ClientHello could be sent")
	} else {
		err := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}).Handshake()
		if c.n != 0 {
			a.Errorf("from 127.0.0.3: the server sent %d bytes in answer to a ClientHello", c.n)
		}
		if err == nil {
			a.Errorf("from 127.0.0.3: the TLS handshake completed")
		}
		a.Evidence("from 127.0.0.3 (outside): a TLS ClientHello got 0 bytes back (no ServerHello, no alert): %v", err)
	}
	// Plain HTTP and silence: nothing either.
	for _, probe := range []string{"GET / HTTP/1.0\r\n\r\n", ""} {
		c := dialOutside(t, s.Host)
		if c == nil {
			continue
		}
		if probe != "" {
			_, _ = io.WriteString(c, probe)
		}
		b, err := io.ReadAll(c)
		var ne net.Error
		if len(b) != 0 || (errors.As(err, &ne) && ne.Timeout()) {
			a.Errorf("from 127.0.0.3, probe %q: got %q (%v), want an immediate close with no data", probe, b, err)
		}
		c.Close()
	}
	a.Evidence("from 127.0.0.3: a plaintext HTTP request and an idle connection were both closed at once with 0 bytes (no banner, no Server header, no error body)")
	r := s.do(t, anonymous, http.MethodGet, "/v2/", nil)
	a.Evidence("from 127.0.0.2 (inside): GET /v2/ → %d, the service answers normally", r.Status)
	a.Review("the perimeter resets connections from outside after the TCP handshake, so a port scan still sees an open port; hiding the service entirely needs a packet filter that drops SYNs from outside the perimeter, which the operator must attest")
}
