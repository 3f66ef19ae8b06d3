// Package egress is the one door for Berth's outbound HTTP: a shared
// *http.Client whose dialer admits only destinations on an allowlist
// (CCC.Core.C10/CN10 "restrict data replication to trust perimeter").
// Webhooks, key-set (JWKS) fetches, external scanners and pull-through
// upstreams all send through it.
//
// # Allowlist
//
// A [Policy] is a list of entries:
//
//   - a host name, "hooks.example.com", optionally with a port,
//     "hooks.example.com:8443" (without one, any port);
//   - a wildcard, "*.example.com": any name below example.com (not
//     example.com itself), optionally with a port;
//   - an IP address, "192.0.2.10" or "[2001:db8::1]:443", optionally with a
//     port;
//   - a network in CIDR notation, "10.20.0.0/16" (any port);
//   - "*": everything (an explicit choice to allow all egress).
//
// An empty Policy denies everything.
//
// # Dial-time checks
//
// The checks run in the dialer, for every connection, including those of
// redirects, and after name resolution: a name matching a host entry is
// resolved once, every address it resolves to is checked, and the
// connection goes to the checked address itself, never to the name, so a
// DNS answer that changes between the check and the connection (DNS
// rebinding) cannot reach anything else. A name allowed by a host entry
// may resolve to public addresses; an address that is loopback, private
// (RFC 1918, unique-local), link-local (cloud metadata services), CGNAT,
// unspecified or multicast is admitted only when an IP or network entry
// covers it too. A literal IP in a URL needs an IP or network entry.
// Proxies from the environment are never used: a proxy would dial on the
// client's behalf, beyond the allowlist.
//
// # Errors
//
// A refused destination fails the request with a [*DeniedError], which
// carries the PermissionDenied code; [Policy.AllowURL] returns the same
// error at configuration time, so that a configured destination outside
// the allowlist fails start-up rather than every delivery.
//
// # Concurrency
//
// A Policy is immutable and a Client is safe for concurrent use.
package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
)

// DeniedError reports a destination the allowlist refuses.
type DeniedError struct {
	// Host is the destination's host name or IP address, and Port its
	// port ("" when unknown).
	Host, Port string
	// Addr is the resolved address that was refused, when the name was
	// allowed but an address it resolves to was not.
	Addr string
	// Reason says why.
	Reason string
}

// Error names the destination and the reason.
func (e *DeniedError) Error() string {
	dst := e.Host
	if e.Port != "" {
		dst = net.JoinHostPort(e.Host, e.Port)
	}
	if e.Addr != "" && e.Addr != e.Host {
		dst += " (" + e.Addr + ")"
	}
	return "egress: destination " + dst + " refused: " + e.Reason
}

// ErrorCode returns PermissionDenied.
func (e *DeniedError) ErrorCode() errcode.Code { return errcode.PermissionDenied }

type hostEntry struct {
	name     string // lower-case; for wildcards, the suffix with its leading dot
	wildcard bool
	port     string // "" for any
}

type ipEntry struct {
	addr netip.Addr
	port string
}

// Policy is an egress allowlist. The zero value denies everything.
type Policy struct {
	all     bool
	hosts   []hostEntry
	ips     []ipEntry
	nets    []netip.Prefix
	entries []string
}

// ParsePolicy parses allowlist entries (see the package documentation).
// Empty entries are ignored.
func ParsePolicy(entries []string) (*Policy, error) {
	p := &Policy{}
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSpace(raw))
		if e == "" {
			continue
		}
		p.entries = append(p.entries, e)
		if e == "*" {
			p.all = true
			continue
		}
		if strings.Contains(e, "/") {
			pf, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("egress: allowlist entry %q is not a valid network: %v", raw, err)
			}
			p.nets = append(p.nets, pf.Masked())
			continue
		}
		host, port := e, ""
		if h, pt, err := net.SplitHostPort(e); err == nil {
			host, port = h, pt
			if n, err := strconv.Atoi(pt); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("egress: allowlist entry %q has an invalid port", raw)
			}
		}
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			p.ips = append(p.ips, ipEntry{addr: a.Unmap(), port: port})
			continue
		}
		he := hostEntry{name: host, port: port}
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			he.wildcard, he.name = true, "."+rest
			host = rest
		}
		if !validHostName(host) {
			return nil, fmt.Errorf("egress: allowlist entry %q is not a host name, IP address, network or \"*\"", raw)
		}
		p.hosts = append(p.hosts, he)
	}
	return p, nil
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 || strings.HasSuffix(h, ".") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// AllowAll reports whether the policy allows every destination ("*").
func (p *Policy) AllowAll() bool { return p != nil && p.all }

// String lists the entries, for start-up logs.
func (p *Policy) String() string {
	if p == nil || len(p.entries) == 0 {
		return "deny-all"
	}
	return strings.Join(p.entries, ",")
}

// Add returns a policy with the entries of p and more.
func (p *Policy) Add(more ...string) (*Policy, error) {
	var cur []string
	if p != nil {
		cur = p.entries
	}
	return ParsePolicy(append(append([]string(nil), cur...), more...))
}

// allowsName reports whether host (a lower-case name) and port match a
// host entry.
func (p *Policy) allowsName(host, port string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range p.hosts {
		if h.port != "" && h.port != port {
			continue
		}
		if h.wildcard && strings.HasSuffix(host, h.name) && len(host) > len(h.name) {
			return true
		}
		if !h.wildcard && host == h.name {
			return true
		}
	}
	return false
}

// allowsIP reports whether an IP or network entry covers a and port.
func (p *Policy) allowsIP(a netip.Addr, port string) bool {
	a = a.Unmap()
	for _, e := range p.ips {
		if e.addr == a && (e.port == "" || e.port == port) {
			return true
		}
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// special reports addresses a host entry alone does not admit.
func special(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a) ||
		!a.IsGlobalUnicast()
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// AllowURL checks, at configuration time, that the policy may admit u's
// host and port (the scheme's default port when u has none). Names are
// not resolved here; the dialer checks their addresses on every
// connection.
func (p *Policy) AllowURL(u *url.URL) error {
	if u == nil || u.Host == "" {
		return &DeniedError{Reason: "not an absolute URL"}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		switch u.Scheme {
		case "https", "wss":
			port = "443"
		case "http", "ws":
			port = "80"
		}
	}
	return p.allowHost(host, port)
}

func (p *Policy) allowHost(host, port string) error {
	if p.AllowAll() {
		return nil
	}
	if p == nil {
		p = &Policy{}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if p.allowsIP(a, port) {
			return nil
		}
		return &DeniedError{Host: host, Port: port, Reason: "the address is not on the egress allowlist"}
	}
	if p.allowsName(host, port) {
		return nil
	}
	return &DeniedError{Host: host, Port: port, Reason: "the host is not on the egress allowlist"}
}

// Resolver resolves host names. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Client. A nil *Options is the zero value, and the
// zero value of every field is safe.
type Options struct {
	// Policy is the allowlist. Nil denies every destination.
	Policy *Policy
	// Resolver resolves names. Default net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds each connection attempt. Default 10 s.
	DialTimeout time.Duration
	// Timeout bounds each request, as http.Client.Timeout. Default 60 s.
	Timeout time.Duration
	// TLSConfig is the client TLS configuration (cloned). Default: the
	// system roots and TLS 1.2 as the minimum version.
	TLSConfig *tls.Config
	// OnDeny, when set, is called with every refused connection, for
	// audit records.
	OnDeny func(ctx context.Context, err *DeniedError)
	// Logger receives a warning for every refused connection. Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.DialTimeout < 0 || o.Timeout < 0 {
		return errors.New("egress: Options timeouts must not be negative")
	}
	return nil
}

// Dialer dials through the allowlist. Its DialContext fits
// http.Transport.DialContext.
type Dialer struct {
	opts Options
	d    net.Dialer
}

// NewDialer returns a Dialer enforcing opts.Policy.
func NewDialer(opts *Options) (*Dialer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Policy == nil {
		o.Policy = &Policy{}
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Dialer{opts: o, d: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}}, nil
}

func (d *Dialer) deny(ctx context.Context, e *DeniedError) error {
	d.opts.Logger.Warn("egress: connection refused by the allowlist", "host", e.Host, "port", e.Port, "addr", e.Addr, "reason", e.Reason)
	if d.opts.OnDeny != nil {
		d.opts.OnDeny(ctx, e)
	}
	return e
}

// DialContext connects to addr ("host:port") if the policy admits it,
// dialing the checked IP addresses only.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, d.deny(ctx, &DeniedError{Host: addr, Reason: "network " + network + " is not allowed"})
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, d.deny(ctx, &DeniedError{Host: addr, Reason: "malformed address"})
	}
	p := d.opts.Policy
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.all && !p.allowsIP(a, port) {
			return nil, d.deny(ctx, &DeniedError{Host: host, Port: port, Reason: "the address is not on the egress allowlist"})
		}
		addrs = []netip.Addr{a}
	} else {
		if !p.all && !p.allowsName(host, port) {
			return nil, d.deny(ctx, &DeniedError{Host: host, Port: port, Reason: "the host is not on the egress allowlist"})
		}
		ips, err := d.opts.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
		}
		for _, a := range ips {
			a = a.Unmap()
			if !p.all && special(a) && !p.allowsIP(a, port) {
				return nil, d.deny(ctx, &DeniedError{Host: host, Port: port, Addr: a.String(),
					Reason: "the name resolves to a loopback, private, link-local or other non-public address that no IP or network entry allows"})
			}
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("egress: resolve %s: no addresses", host)
		}
	}
	var errs []error
	for _, a := range addrs {
		if network == "tcp4" && !a.Is4() || network == "tcp6" && !a.Is6() {
			continue
		}
		c, err := d.d.DialContext(ctx, network, netip.AddrPortFrom(a, portNum(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("egress: %s has no %s address", host, network)
	}
	return nil, errors.Join(errs...)
}

func portNum(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

// NewClient returns the *http.Client for every outbound request: its
// transport dials through NewDialer(opts), uses no proxy, and has the
// options' TLS configuration and timeouts.
func NewClient(opts *Options) (*http.Client, error) {
	d, err := NewDialer(opts)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.opts.TLSConfig != nil {
		tc = d.opts.TLSConfig.Clone()
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: d.opts.Timeout,
	}
	return &http.Client{Transport: t, Timeout: d.opts.Timeout}, nil
}
