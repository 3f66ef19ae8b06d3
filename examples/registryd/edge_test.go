package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const edgePassword = "registryd-test-password"

// edgeLog collects the server's log while it runs.
type edgeLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *edgeLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *edgeLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type edgeServer struct {
	addr, data string
	log        *edgeLog
}

// start runs registryd with args (plus a fresh --data and --addr
// 127.0.0.1:0) until the test ends.
func edgeStart(t *testing.T, args ...string) *edgeServer {
	t.Helper()
	t.Setenv("BERTH_ADMIN_PASSWORD", edgePassword)
	s := &edgeServer{data: filepath.Join(t.TempDir(), "data"), log: &edgeLog{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"--data", s.data, "--addr", "127.0.0.1:0"}, args...), s.log, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("registryd: %v", err)
		}
	})
	select {
	case s.addr = <-ready:
	case err := <-errc:
		errc <- nil
		t.Fatalf("registryd did not start: %v\n%s", err, s.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("registryd did not start in time\n%s", s.log)
	}
	return s
}

// edgeStartFails runs registryd with args and returns its start-up error.
func edgeStartFails(t *testing.T, args ...string) (error, string) {
	t.Helper()
	t.Setenv("BERTH_ADMIN_PASSWORD", edgePassword)
	data := filepath.Join(t.TempDir(), "data")
	var log edgeLog
	ready := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"--data", data, "--addr", "127.0.0.1:0"}, args...), &log, ready)
	select {
	case addr := <-ready:
		t.Fatalf("registryd started on %s", addr)
	default:
	}
	if err == nil {
		t.Fatal("registryd returned no error")
	}
	if _, serr := os.Stat(data); serr == nil {
		t.Errorf("the data directory was created before the configuration was refused")
	}
	return err, log.String()
}

// TestStartupRefusesDisallowedLocations: CCC.Core.C06.TR01/TR02
// (CN06.AR01/AR02) and, for webhooks, C10.TR01 (CN10.AR01).
func TestStartupRefusesDisallowedLocations(t *testing.T) {
	eu := []string{"--allowed-locations", "eu-central-1,local", "--location", "eu-central-1"}
	for _, c := range []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"server location", []string{"--allowed-locations", "eu-central-1", "--location", "us-east-1"}, []string{"--location is us-east-1", "not an allowed location"}},
		{"server location missing", []string{"--allowed-locations", "eu-central-1"}, []string{"--location is required"}},
		{"local default bucket", []string{"--allowed-locations", "eu-central-1", "--location", "eu-central-1"}, []string{"--blob-url file://", "is in local", "allowed: eu-central-1"}},
		{"s3 region", append(eu, "--blob-url", "s3://bucket?region=us-east-1"), []string{"--blob-url s3://bucket is in us-east-1"}},
		{"azure without hint", append(eu, "--blob-url", "azblob://c"), []string{"--blob-url azblob://c", "--location-hint blob=<location>"}},
		{"azure hint elsewhere", append(eu, "--blob-url", "azblob://c", "--location-hint", "blob=westus"), []string{"--blob-url azblob://c is in westus"}},
		{"aws kms", append(eu, "--keeper-url", "awskms://arn:aws:kms:us-west-2:111122223333:key/k"), []string{"--keeper-url", "us-west-2"}},
		{"gcp kms", append(eu, "--keeper-url", "gcpkms://projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"), []string{"--keeper-url", "us-central1"}},
		{"azure key vault", append(eu, "--keeper-url", "azurekeyvault://v.vault.azure.net/keys/k"), []string{"--keeper-url", "Azure key vault"}},
		{"postgres", append(eu, "--meta-url", "postgres://berth:s3cret@db.example.com/berth"), []string{"--meta-url postgres://db.example.com/berth", "does not say where it is"}},
		{"rds", append(eu, "--meta-url", "postgres://berth:s3cret@db.x.us-east-1.rds.amazonaws.com/berth"), []string{"--meta-url", "us-east-1"}},
		{"nats", append(eu, "--events-url", "nats://nats.example:4222/berth"), []string{"--events-url", "NATS"}},
		{"hint without allowed locations", []string{"--location-hint", "blob=eu-central-1"}, []string{"need --allowed-locations"}},
		{"webhook off the allowlist", []string{"--webhook-url", "https://hooks.example.com/berth", "--egress-allow", "10.0.0.0/8,other.example.com"}, []string{"--webhook-url https://hooks.example.com/berth", "not on the egress allowlist", "--egress-allow"}},
		{"plain http webhook", []string{"--webhook-url", "http://hooks.example.com/berth"}, []string{"--webhook-url", "https"}},
		{"webhook without secret", []string{"--webhook-url", "https://hooks.example.com/berth"}, []string{"BERTH_WEBHOOK_SECRET"}},
		{"bad egress entry", []string{"--egress-allow", "not a host"}, []string{"--egress-allow"}},
		{"mTLS over plain HTTP", []string{"--insecure-http", "--tls-client-ca", "ca.pem"}, []string{"--tls-client-ca needs TLS"}},
		{"TLS 1.1", []string{"--tls-min-version", "1.1"}, []string{"--tls-min-version"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("BERTH_WEBHOOK_SECRET", "")
			err, log := edgeStartFails(t, c.args...)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error()+log, "s3cret") {
				t.Errorf("a password leaked: %v\n%s", err, log)
			}
		})
	}
	// The same from the environment.
	t.Run("env", func(t *testing.T) {
		t.Setenv("BERTH_ALLOWED_LOCATIONS", "eu-central-1")
		t.Setenv("BERTH_LOCATION", "eu-central-1")
		t.Setenv("BERTH_BLOB_URL", "s3://bucket?region=eu-central-1")
		err, _ := edgeStartFails(t)
		if !strings.Contains(err.Error(), "--keeper-url (default) is in local") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestStartupInAllowedLocation(t *testing.T) {
	s := edgeStart(t, "--insecure-http", "--allowed-locations", "local", "--location", "local", "--events-url", "mem://events")
	if !strings.Contains(s.log.String(), "locations checked") {
		t.Fatalf("no location record in the start-up log:\n%s", s.log)
	}
}

// TestBucketLocationReported: a Cloud Storage bucket's location is asked
// from the service (fake-gcs-server reports US-CENTRAL1).
func TestBucketLocationReported(t *testing.T) {
	gsURL := testsvc.URL(t, "BERTH_TEST_GCS_URL")
	if os.Getenv("STORAGE_EMULATOR_HOST") == "" {
		t.Skip("STORAGE_EMULATOR_HOST is not set: the GCS URL is not the local emulator")
	}
	t.Setenv("BERTH_ADMIN_PASSWORD", edgePassword)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--allowed-locations", "europe-west3,local", "--location", "local"}, "--blob-url gs://berth-test is in us-central1 (as its service reports), which is not an allowed location"},
		{[]string{"--allowed-locations", "europe-west3,us-central1,local", "--location", "local", "--location-hint", "blob=europe-west3"}, "the --location-hint says blob=europe-west3"},
	} {
		var log edgeLog
		err := run(t.Context(), append([]string{"--data", t.TempDir(), "--addr", "127.0.0.1:0", "--blob-url", gsURL}, c.args...), &log, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q\n%s", c.args, err, c.want, &log)
		}
	}
	s := edgeStart(t, "--insecure-http", "--blob-url", gsURL, "--allowed-locations", "us-central1,local", "--location", "local")
	if !strings.Contains(s.log.String(), "bucket location checked") {
		t.Fatalf("no bucket location in the start-up log:\n%s", s.log)
	}
}

// edgeFreePort returns a loopback address nothing listens on.
func edgeFreePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func edgeCAPool(t *testing.T, file string) *x509.CertPool {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no CA certificate")
	}
	return p
}

func edgeGet(t *testing.T, u string, roots *x509.CertPool, max uint16, certs ...tls.Certificate) (*http.Response, error) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: max, Certificates: certs}}}
	r, err := c.Get(u)
	if err == nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return r, err
}

// edgeWaitServing waits until the metrics listener, started in the
// background, accepts connections.
func edgeWaitServing(t *testing.T, addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// TestTLSOnEveryListener: CCC.Core.C01.TR01 and TR03 (CN01.AR01, AR03).
func TestTLSOnEveryListener(t *testing.T) {
	metricsAddr := edgeFreePort(t)
	s := edgeStart(t, "--metrics-addr", metricsAddr)
	edgeWaitServing(t, metricsAddr)
	roots := edgeCAPool(t, filepath.Join(s.data, "tls", "ca.pem"))
	for _, c := range []struct{ name, url string }{{"registry", "https://" + s.addr + "/v2/"}, {"metrics", "https://" + metricsAddr + "/metrics"}} {
		if _, err := edgeGet(t, c.url, roots, tls.VersionTLS12); err == nil {
			t.Errorf("%s: a TLS 1.2 client was served", c.name)
		}
		r, err := edgeGet(t, c.url, roots, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.TLS.Version != tls.VersionTLS13 {
			t.Errorf("%s: version %#x", c.name, r.TLS.Version)
		}
		if h := r.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
			t.Errorf("%s: Strict-Transport-Security %q", c.name, h)
		}
		// Plain HTTP to the TLS port is not served.
		if r, err := http.Get(strings.Replace(c.url, "https://", "http://", 1)); err == nil {
			r.Body.Close()
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: plain HTTP answered %s", c.name, r.Status)
			}
		}
	}
	if r, _ := edgeGet(t, "https://"+s.addr+"/v2/", roots, 0); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/: %s, want 401", r.Status)
	}
}

func TestTLSMinVersion12(t *testing.T) {
	s := edgeStart(t, "--tls-min-version", "1.2")
	roots := edgeCAPool(t, filepath.Join(s.data, "tls", "ca.pem"))
	r, err := edgeGet(t, "https://"+s.addr+"/v2/", roots, tls.VersionTLS12)
	if err != nil || r.TLS.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 opted in: %v", err)
	}
}

func TestPlainHTTPHasNoHSTS(t *testing.T) {
	s := edgeStart(t, "--insecure-http")
	r, err := http.Get("http://" + s.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if h := r.Header.Get("Strict-Transport-Security"); h != "" || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain HTTP: %s, Strict-Transport-Security %q", r.Status, h)
	}
}

// edgeClientCA writes a CA to a file and returns it with a client
// certificate it issued.
func edgeClientCA(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	serial := func() *big.Int { n, _ := rand.Int(rand.Reader, big.NewInt(1<<62)); return n }
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "client CA"}, NotBefore: time.Now().Add(-time.Hour),
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
	file := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS: CCC.Core.C01.TR08 (CN01.AR08).
func TestMutualTLS(t *testing.T) {
	caFile, cert := edgeClientCA(t)
	_, stranger := edgeClientCA(t)
	metricsAddr := edgeFreePort(t)
	s := edgeStart(t, "--tls-client-ca", caFile, "--metrics-addr", metricsAddr)
	edgeWaitServing(t, metricsAddr)
	roots := edgeCAPool(t, filepath.Join(s.data, "tls", "ca.pem"))
	for _, u := range []string{"https://" + s.addr + "/v2/", "https://" + metricsAddr + "/metrics"} {
		if _, err := edgeGet(t, u, roots, 0); err == nil {
			t.Errorf("%s: served without a client certificate", u)
		}
		if _, err := edgeGet(t, u, roots, 0, stranger); err == nil {
			t.Errorf("%s: served a certificate from another CA", u)
		}
		r, err := edgeGet(t, u, roots, 0, cert)
		if err != nil {
			t.Fatalf("%s with a client certificate: %v", u, err)
		}
		if want := map[bool]int{true: 401, false: 200}[strings.HasSuffix(u, "/v2/")]; r.StatusCode != want {
			t.Errorf("%s: %s, want %d", u, r.Status, want)
		}
	}
}

// TestSignedURLs: capability CCC.Core.F05 (signed URLs).
func TestSignedURLs(t *testing.T) {
	s := edgeStart(t)
	roots := edgeCAPool(t, filepath.Join(s.data, "tls", "ca.pem"))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections) // before the server shuts down
	ref, err := name.ParseReference(s.addr + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(2048, 1)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: edgePassword}), remote.WithTransport(tr)); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()

	req, _ := http.NewRequest("POST", "https://"+s.addr+"/api/v1/repositories/team/app/signed-urls", strings.NewReader(`{"reference":"v1","expiresIn":"5m"}`))
	req.SetBasicAuth("admin", edgePassword)
	client := &http.Client{Transport: tr}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created signedurl.CreatedURL
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || json.Unmarshal(b, &created) != nil {
		t.Fatalf("mint: %s %s", res.Status, b)
	}
	if !strings.HasPrefix(created.URL, "https://"+s.addr+"/v2/team/app/manifests/"+want.String()+"?") {
		t.Fatalf("url %q", created.URL)
	}
	// A plain client with no credentials reads it.
	res, err = client.Get(created.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := sha256.Sum256(body)
	if res.StatusCode != 200 || "sha256:"+hex.EncodeToString(sum[:]) != want.String() {
		t.Fatalf("GET signed URL: %s", res.Status)
	}
	// Tampered: the signature of another expiry.
	u, _ := url.Parse(created.URL)
	q := u.Query()
	q.Set("expires", "9999999999")
	u.RawQuery = q.Encode()
	res, err = client.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || !strings.Contains(string(b), `"UNAUTHORIZED"`) {
		t.Fatalf("tampered URL: %s %s", res.Status, b)
	}
	// The access log recorded the requests and never the signature.
	sig := edgeMustParse(t, created.URL).Query().Get("signature")
	logs, _ := filepath.Glob(filepath.Join(s.data, "access-*.log"))
	var all []byte
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("signature=REDACTED")) || bytes.Contains(all, []byte(sig)) || strings.Contains(s.log.String(), sig) {
		t.Fatalf("the signature is not redacted from the logs:\n%s", all)
	}
}

func edgeMustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestWebhooksThroughEgress: webhook deliveries go through the outbound
// client, whose allowlist is the configured endpoints by default
// (CCC.Core.C10.TR01, CN10.AR01).
func TestWebhooksThroughEgress(t *testing.T) {
	got := make(chan string, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- string(b):
		default:
		}
	}))
	defer hook.Close()
	t.Setenv("BERTH_WEBHOOK_SECRET", "0123456789abcdef0123")
	s := edgeStart(t, "--insecure-http", "--webhook-url", hook.URL+"/events")
	if !strings.Contains(s.log.String(), "egress allowlist") || !strings.Contains(s.log.String(), strings.TrimPrefix(hook.URL, "http://")) {
		t.Fatalf("the start-up log does not show the derived allowlist:\n%s", s.log)
	}
	ref, _ := name.ParseReference(s.addr+"/team/app:v1", name.Insecure)
	img, _ := random.Image(512, 1)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: edgePassword})); err != nil {
		t.Fatalf("push: %v", err)
	}
	// The access log's start-up announcement may come first.
	deadline := time.After(20 * time.Second)
	for delivered := false; !delivered; {
		select {
		case b := <-got:
			delivered = strings.Contains(b, "team/app")
			if !delivered && !strings.Contains(b, "dev.berth.accesslog.started") {
				t.Fatalf("delivery %s", b)
			}
		case <-deadline:
			t.Fatalf("no webhook delivery\n%s", s.log)
		}
	}

	// An allowlist that does not name the endpoint refuses it at start-up.
	err, _ := edgeStartFails(t, "--insecure-http", "--webhook-url", hook.URL+"/events", "--egress-allow", edgeFreePort(t))
	if !strings.Contains(err.Error(), "--webhook-url") {
		t.Fatalf("error %v", err)
	}
}
