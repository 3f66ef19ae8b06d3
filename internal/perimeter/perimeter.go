// Package perimeter restricts a listener to the clients inside a trust
// perimeter: a list of networks. A connection from any other address is
// closed as soon as it is accepted, before a byte is read or written, so
// that the client gets no TLS ServerHello, no HTTP response and no banner:
// nothing that tells it what listens there (CCC.Core.CN05.AR04 and AR05).
//
// # Security
//
// The check uses the connection's remote address only; forwarding headers
// such as X-Forwarded-For are never consulted, so a client cannot claim to
// be inside. Behind a proxy or load balancer, the perimeter is the proxy's
// address: filter clients there instead.
//
// Accepting and closing a TCP connection still shows that the port is
// open. Only a packet filter that drops the SYN hides the service
// entirely; this listener is a second line behind one.
//
// # Concurrency
//
// A Listener is safe for concurrent use, as net.Listener requires.
package perimeter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
)

// ParsePrefixes parses a comma-separated list of networks in CIDR
// notation ("10.0.0.0/8, 192.168.1.0/24, ::1/128") or single addresses
// (taken as /32 or /128). Empty entries are ignored; an empty list is an
// error, since it would refuse every client.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("perimeter: %q is neither a network (CIDR) nor an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("perimeter: %q is not a network in CIDR notation", f)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("perimeter: no network given")
	}
	return out, nil
}

// Options configures a Listener. The zero value of every field is safe.
type Options struct {
	// Logger receives a line, at level Warn, for the first refused
	// connection and then for every 1000th. Default: no logging.
	Logger *slog.Logger
}

// Listener is a net.Listener that accepts only connections from inside
// its networks.
type Listener struct {
	net.Listener
	allowed  []netip.Prefix
	log      *slog.Logger
	rejected atomic.Int64
}

// NewListener wraps ln so that Accept returns only connections whose
// remote address is in one of allowed; the others are reset at once.
func NewListener(ln net.Listener, allowed []netip.Prefix, opts *Options) (*Listener, error) {
	if ln == nil || len(allowed) == 0 {
		return nil, errors.New("perimeter: NewListener needs a listener and at least one network")
	}
	l := &Listener{Listener: ln, allowed: allowed}
	if opts != nil {
		l.log = opts.Logger
	}
	return l, nil
}

// Allows reports whether addr is inside the perimeter.
func (l *Listener) Allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range l.allowed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Rejected returns how many connections were refused.
func (l *Listener) Rejected() int64 { return l.rejected.Load() }

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err == nil && l.Allows(ap.Addr()) {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset: no orderly close to wait on
		}
		_ = c.Close()
		if n := l.rejected.Add(1); l.log != nil && (n == 1 || n%1000 == 0) {
			l.log.Warn("perimeter: refused a connection from outside the allowed networks", "client", c.RemoteAddr().String(), "refused", n)
		}
	}
}

// String describes the perimeter, for start-up logs.
func (l *Listener) String() string {
	s := make([]string, len(l.allowed))
	for i, p := range l.allowed {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
