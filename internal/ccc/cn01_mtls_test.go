package ccc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate valid from notBefore to notAfter.
func (ca *testCA) client(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCCC_Core_CN01_AR08_C01_TR08_MutualTLS(t *testing.T) {
	a := assess(t)
	t.Parallel()
	if !hasFlag(t, "tls-client-ca") {
		a.Gap("registryd offers no mutual TLS: no option requires client certificates, so TLS connections are authenticated on the server side only")
		return
	}
	ca := newTestCA(t, "ccc client CA")
	other := newTestCA(t, "untrusted CA")
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := ca.client(t, "ccc-client", now.Add(-time.Hour), now.Add(time.Hour))
	s := mustStart(t, serverOptions{Args: []string{"--tls-client-ca", caFile}, Client: func(c *tls.Config) {
		c.Certificates = []tls.Certificate{good}
	}})
	a.Evidence("registryd started with --tls-client-ca (a client CA generated for the test)")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"a certificate from an untrusted CA", []tls.Certificate{other.client(t, "intruder", now.Add(-time.Hour), now.Add(time.Hour))}},
		{"an expired certificate from the configured CA", []tls.Certificate{ca.client(t, "expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour))}},
		{"a certificate from the configured CA that is not yet valid", []tls.Certificate{ca.client(t, "future", now.Add(24*time.Hour), now.Add(48*time.Hour))}},
	} {
		cfg := s.TLSConfig()
		cfg.Certificates = tc.certs
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
		res, err := c.Get(s.URL + "/v2/")
		if err == nil {
			res.Body.Close()
			a.Errorf("with %s: GET /v2/ → %d; the connection was accepted", tc.name, res.StatusCode)
			continue
		}
		a.Evidence("with %s: refused during the TLS handshake (%v)", tc.name, err)
	}
	addrs := serverListeners(a, s)
	for _, addr := range addrs {
		if _, err := handshake(addr, tls.VersionTLS13, tls.VersionTLS13, nil); err == nil {
			// The handshake itself may complete before the server's alert
			// arrives in TLS 1.3; a request must then fail.
			cfg := s.TLSConfig()
			cfg.InsecureSkipVerify = true
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
			if res, err := c.Get("https://" + addr + "/"); err == nil {
				res.Body.Close()
				a.Errorf("listener %s serves clients without a certificate: %d", addr, res.StatusCode)
			}
		}
	}
	r := s.do(t, anonymous, http.MethodGet, "/v2/", nil)
	if r.Status != http.StatusUnauthorized {
		a.Errorf("with a certificate from the configured CA: GET /v2/ → %d, want 401 (the registry, asking for credentials)", r.Status)
	}
	a.Evidence("with a valid certificate from the configured CA: GET /v2/ → %d (the registry); all %d listener(s) refuse clients without one", r.Status, len(addrs))
	a.Evidence("mutual TLS is opt-in (--tls-client-ca, off by default): amber and red deployments must set it")
}
