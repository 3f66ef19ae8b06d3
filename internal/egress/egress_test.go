package egress_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/egress"
	"github.com/berth-dev/berth/internal/errcode"
)

func mustPolicy(t *testing.T, entries ...string) *egress.Policy {
	t.Helper()
	p, err := egress.ParsePolicy(entries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePolicyRefuses(t *testing.T) {
	for _, e := range []string{"10.0.0.0/33", "host:0", "host:99999", "host:x", "bad host", "-x.example", "a..b", "*.", "http://x", "x.example."} {
		if _, err := egress.ParsePolicy([]string{e}); err == nil {
			t.Errorf("ParsePolicy(%q) succeeded", e)
		}
	}
}

func TestAllowURL(t *testing.T) {
	p := mustPolicy(t, "hooks.example.com", "*.corp.example:8443", "192.0.2.10:443", "[2001:db8::1]", "10.20.0.0/16", "")
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"https://hooks.example.com/x", true},
		{"https://HOOKS.example.com:9999/x", true},
		{"https://evil.hooks.example.com/x", false},
		{"https://example.com/", false},
		{"https://a.corp.example:8443/", true},
		{"https://a.b.corp.example:8443/", true},
		{"https://a.corp.example/", false},
		{"https://corp.example:8443/", false},
		{"https://192.0.2.10/", true},
		{"http://192.0.2.10/", false},
		{"https://192.0.2.11/", false},
		{"https://[2001:db8::1]:1234/", true},
		{"https://10.20.3.4:1/", true},
		{"https://10.21.3.4/", false},
		{"https://127.0.0.1/", false},
	} {
		u, _ := url.Parse(c.url)
		err := p.AllowURL(u)
		if (err == nil) != c.want {
			t.Errorf("AllowURL(%s) = %v, want allowed=%v", c.url, err, c.want)
		}
		if err != nil && errcode.Of(err) != errcode.PermissionDenied {
			t.Errorf("AllowURL(%s): code %v", c.url, errcode.Of(err))
		}
	}
	var deny *egress.Policy
	u, _ := url.Parse("https://example.com")
	if deny.AllowURL(u) == nil || mustPolicy(t).AllowURL(u) == nil {
		t.Error("an empty policy allows a URL")
	}
	if mustPolicy(t, "*").AllowURL(u) != nil {
		t.Error(`"*" refuses a URL`)
	}
}

// resolver maps names to addresses and counts lookups.
type resolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
	calls int
}

func (r *resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	a, ok := r.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

// server is an HTTP server counting the connections it accepts.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func newServer(t *testing.T, h http.Handler) *server {
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) port() string {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
}

func client(t *testing.T, p *egress.Policy, r egress.Resolver, denied *[]*egress.DeniedError) *http.Client {
	t.Helper()
	var mu sync.Mutex
	c, err := egress.NewClient(&egress.Options{Policy: p, Resolver: r, DialTimeout: 300 * time.Millisecond, Timeout: 5 * time.Second,
		OnDeny: func(_ context.Context, e *egress.DeniedError) {
			mu.Lock()
			defer mu.Unlock()
			if denied != nil {
				*denied = append(*denied, e)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	var de *egress.DeniedError
	if !errors.As(err, &de) || errcode.Of(err) != errcode.PermissionDenied {
		t.Fatalf("%s: err %v, want a DeniedError", what, err)
	}
}

func TestDialChecks(t *testing.T) {
	a, b := newServer(t, okHandler()), newServer(t, okHandler())
	loop := netip.MustParseAddr("127.0.0.1")
	res := &resolver{names: map[string][]netip.Addr{"hooks.test": {loop}, "b.test": {loop}}}

	// Only 127.0.0.1:<port of A> is allowed.
	var denied []*egress.DeniedError
	c := client(t, mustPolicy(t, "127.0.0.1:"+a.port()), res, &denied)
	if r, err := c.Get(a.URL); err != nil || r.StatusCode != 200 {
		t.Fatalf("allowed A: %v", err)
	} else {
		r.Body.Close()
	}
	_, err := c.Get(b.URL)
	wantDenied(t, "B by address", err)
	// A name resolving to B's address: refused before any connection.
	_, err = c.Get("http://b.test:" + b.port() + "/")
	wantDenied(t, "B by name", err)
	if n := b.conns.Load(); n != 0 {
		t.Fatalf("B received %d connections", n)
	}
	if len(denied) != 2 {
		t.Fatalf("OnDeny saw %d refusals, want 2", len(denied))
	}

	// A name on the list resolving to loopback needs an address entry too.
	c = client(t, mustPolicy(t, "hooks.test"), res, nil)
	_, err = c.Get("http://hooks.test:" + a.port() + "/")
	wantDenied(t, "allowed name resolving to loopback", err)
	c = client(t, mustPolicy(t, "hooks.test", "127.0.0.0/8"), res, nil)
	if r, err := c.Get("http://hooks.test:" + a.port() + "/"); err != nil {
		t.Fatalf("allowed name and network: %v", err)
	} else {
		r.Body.Close()
	}

	// Deny-all by default, allow-all only when asked.
	_, err = client(t, nil, res, nil).Get(a.URL)
	wantDenied(t, "nil policy", err)
	if r, err := client(t, mustPolicy(t, "*"), res, nil).Get(b.URL); err != nil {
		t.Fatalf(`"*": %v`, err)
	} else {
		r.Body.Close()
	}
}

// TestRebinding: the dialer resolves once per connection and connects to
// the address it checked, so an answer that changes between check and
// connection cannot reach a refused address.
func TestRebinding(t *testing.T) {
	inner := newServer(t, okHandler())
	res := &rebinder{first: netip.MustParseAddr("192.0.2.1"), then: netip.MustParseAddr("127.0.0.1")} // TEST-NET-1: unroutable
	c := client(t, mustPolicy(t, "rebind.test"), res, nil)
	_, err := c.Get("http://rebind.test:" + inner.port() + "/")
	if err == nil {
		t.Fatal("the request succeeded")
	}
	if n := inner.conns.Load(); n != 0 {
		t.Fatalf("the loopback server received %d connections", n)
	}
	if res.calls.Load() != 1 {
		t.Fatalf("%d lookups for one connection, want 1", res.calls.Load())
	}
	// The second answer is checked on the next connection and refused.
	_, err = c.Get("http://rebind.test:" + inner.port() + "/")
	wantDenied(t, "rebound to loopback", err)
}

type rebinder struct {
	first, then netip.Addr
	calls       atomic.Int64
}

func (r *rebinder) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if r.calls.Add(1) == 1 {
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.then}, nil
}

func TestRedirectsAndProxies(t *testing.T) {
	target := newServer(t, okHandler())
	proxy := newServer(t, okHandler())
	front := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/x", http.StatusFound)
	}))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	// A name, not a loopback literal: proxies from the environment would
	// apply to it.
	res := &resolver{names: map[string][]netip.Addr{"front.test": {netip.MustParseAddr("127.0.0.1")}}}
	c := client(t, mustPolicy(t, "front.test", "127.0.0.1:"+front.port()), res, nil)
	_, err := c.Get("http://front.test:" + front.port() + "/")
	wantDenied(t, "redirect to a refused port", err)
	if target.conns.Load() != 0 || proxy.conns.Load() != 0 {
		t.Fatalf("target %d, proxy %d connections; want none", target.conns.Load(), proxy.conns.Load())
	}
	if front.conns.Load() != 1 {
		t.Fatalf("front %d connections, want 1 (direct, no proxy)", front.conns.Load())
	}
}

func TestNetworks(t *testing.T) {
	d, err := egress.NewDialer(&egress.Options{Policy: mustPolicy(t, "*")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DialContext(t.Context(), "udp", "127.0.0.1:53"); err == nil {
		t.Fatal("udp dialed")
	}
	if _, err := egress.NewDialer(&egress.Options{Timeout: -1}); err == nil {
		t.Fatal("negative timeout accepted")
	}
}

// TestTLSVerifiesTheName: the dialer connects to a checked address, and
// the certificate is still verified against the URL's host name.
func TestTLSVerifiesTheName(t *testing.T) {
	srv := httptest.NewTLSServer(okHandler()) // its certificate names example.com
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	res := &resolver{names: map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}, "other.test": {netip.MustParseAddr("127.0.0.1")}}}
	c, err := egress.NewClient(&egress.Options{Policy: mustPolicy(t, "example.com", "other.test", "127.0.0.1/32"), Resolver: res, TLSConfig: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Get("https://example.com:" + port + "/")
	if err != nil {
		t.Fatalf("example.com: %v", err)
	}
	r.Body.Close()
	var ce *tls.CertificateVerificationError
	if _, err := c.Get("https://other.test:" + port + "/"); !errors.As(err, &ce) {
		t.Fatalf("other.test, whose name the certificate lacks: %v, want a verification error", err)
	}
}
