package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clientCert returns a client certificate issued by a fresh CA, and that
// CA's pool.
func clientCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "clients"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "ci"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestServerConfig(t *testing.T) {
	s, err := EnsureSelfSigned(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := LoadCertificate(s.CertFile, s.KeyFile)
	roots, err := LoadCertPool(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, clientCAs := clientCert(t)
	other, _ := clientCert(t)
	serve := func(opts *ServerOptions) string {
		c, err := NewServerConfig(cert, opts)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(HSTS(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), 0))
		srv.TLS = c
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	get := func(u string, max uint16, certs ...tls.Certificate) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: max, Certificates: certs}}}
		r, err := c.Get(u)
		if err == nil {
			r.Body.Close()
		}
		return r, err
	}

	def := serve(nil)
	if _, err := get(def, tls.VersionTLS12); err == nil {
		t.Fatal("a TLS 1.2 client was served by default")
	}
	r, err := get(def, 0)
	if err != nil || r.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("TLS 1.3: %v", err)
	}
	if h := r.Header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
		t.Fatalf("HSTS %q", h)
	}

	compat := serve(&ServerOptions{MinVersion: tls.VersionTLS12})
	if r, err := get(compat, tls.VersionTLS12); err != nil || r.TLS.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 opted in: %v", err)
	}

	mtls := serve(&ServerOptions{ClientCAs: clientCAs})
	if _, err := get(mtls, 0); err == nil {
		t.Fatal("mTLS: served a client without a certificate")
	}
	if _, err := get(mtls, 0, other); err == nil {
		t.Fatal("mTLS: served a certificate from another CA")
	}
	if _, err := get(mtls, 0, client); err != nil {
		t.Fatalf("mTLS with a client certificate: %v", err)
	}

	if _, err := NewServerConfig(cert, &ServerOptions{MinVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}

func TestHSTSNeverOnPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(HSTS(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), time.Hour))
	defer srv.Close()
	r, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if h := r.Header.Get("Strict-Transport-Security"); h != "" {
		t.Fatalf("HSTS %q over plain HTTP", h)
	}
}

func TestParseVersionAndPool(t *testing.T) {
	for in, want := range map[string]uint16{"1.2": tls.VersionTLS12, "TLS1.3": tls.VersionTLS13, "tls13": tls.VersionTLS13} {
		if v, err := ParseVersion(in); err != nil || v != want {
			t.Errorf("ParseVersion(%q) = %#x, %v", in, v, err)
		}
	}
	for _, in := range []string{"1.1", "1.0", "", "3"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", in)
		}
	}
	f := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(f, []byte("not pem"), 0o600)
	if _, err := LoadCertPool(f); err == nil {
		t.Fatal("LoadCertPool accepted a file without certificates")
	}
}
