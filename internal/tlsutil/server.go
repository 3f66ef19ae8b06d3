package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServerOptions adjusts NewServerConfig. A nil *ServerOptions is the
// zero value: TLS 1.3 minimum, no client certificates.
type ServerOptions struct {
	// MinVersion is the lowest protocol version accepted,
	// tls.VersionTLS12 or tls.VersionTLS13. Default TLS 1.3
	// (CCC.Core.C01.TR01 requires it; TLS 1.2 is a compatibility opt-in).
	MinVersion uint16
	// ClientCAs, when set, turns on mutual TLS: every client must present
	// a certificate issued by one of them (CCC.Core.C01.TR08).
	ClientCAs *x509.CertPool
}

// NewServerConfig returns the server configuration of every Berth
// listener: cert, the minimum version of opts (default TLS 1.3), and,
// when opts.ClientCAs is set, RequireAndVerifyClientCert against it.
func NewServerConfig(cert tls.Certificate, opts *ServerOptions) (*tls.Config, error) {
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	switch o.MinVersion {
	case 0:
		o.MinVersion = tls.VersionTLS13
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("tlsutil: minimum version %#x is not TLS 1.2 or 1.3", o.MinVersion)
	}
	c := ServerConfig(cert)
	c.MinVersion = o.MinVersion
	if o.ClientCAs != nil {
		c.ClientCAs = o.ClientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// ParseVersion parses "1.2" or "1.3" (also "TLS1.2", "tls13").
func ParseVersion(s string) (uint16, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimPrefix(strings.TrimPrefix(v, "tls"), "v")
	switch v {
	case "1.2", "12":
		return tls.VersionTLS12, nil
	case "1.3", "13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tlsutil: TLS version %q: want 1.2 or 1.3", s)
}

// LoadCertPool reads PEM certificates from file; it fails when the file
// holds none.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, errors.New("tlsutil: " + file + " holds no PEM certificate")
	}
	return p, nil
}

// DefaultHSTSMaxAge is the max-age HSTS sends unless told otherwise.
const DefaultHSTSMaxAge = 365 * 24 * time.Hour

// HSTS returns next with a Strict-Transport-Security header of maxAge
// (DefaultHSTSMaxAge when zero) on every response to a request that came
// over TLS, and never on one that did not: a browser ignores the header
// over plain HTTP, and sending it there would assert a protection the
// connection does not have.
func HSTS(next http.Handler, maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		maxAge = DefaultHSTSMaxAge
	}
	v := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", v)
		}
		next.ServeHTTP(w, r)
	})
}
