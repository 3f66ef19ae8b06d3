package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

func TestSelfSignedServesTLS13(t *testing.T) {
	dir := t.TempDir()
	s, err := EnsureSelfSigned(dir, []string{"registry.example"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
	again, err := EnsureSelfSigned(dir, nil)
	if err != nil || *again != *s {
		t.Fatalf("second call: %v", err)
	}
	cert, err := LoadCertificate(s.CertFile, s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = ServerConfig(cert)
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(s.CAFile)
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}}}
	if _, err := c.Get(srv.URL); err == nil {
		t.Fatal("TLS 1.2 client connected")
	}
	c = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("TLS 1.3 client with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("version %x", resp.TLS.Version)
	}
}
