package harbor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/harbor"
	"github.com/berth-dev/berth/scan/scantest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// adapter is a fake Harbor scanner adapter: it knows the digests in
// known, answers 422 for others, and reports each scan as in progress
// for pending polls first.
type adapter struct {
	t       *testing.T
	mu      sync.Mutex
	known   map[string]bool
	scans   map[string]string // id → digest
	polls   map[string]int
	pending int
	n       atomic.Int64
	lastReq atomic.Value
}

func (a *adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer adapter-secret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/metadata":
		w.Header().Set("Content-Type", harbor.MetadataMIMEType)
		w.Write([]byte(`{"scanner":{"name":"Trivy","vendor":"Aqua Security","version":"v0.58.0"},
			"capabilities":[{"consumes_mime_types":["application/vnd.oci.image.manifest.v1+json"],"produces_mime_types":["` + harbor.ReportMIMEType + `"]}],
			"properties":{"harbor.scanner-adapter/vulnerability-database-updated-at":"2026-11-23T06:00:00Z"}}`))
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/scan":
		var req struct {
			Registry struct{ URL, Authorization string }
			Artifact struct {
				Repository, Digest string
				MimeType           string `json:"mime_type"`
			}
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/vnd.scanner.adapter.scan.request+json") ||
			json.NewDecoder(r.Body).Decode(&req) != nil || req.Registry.Authorization != "Bearer pull-only:"+req.Artifact.Repository {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		a.lastReq.Store(req.Artifact.MimeType)
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.known[req.Artifact.Digest] {
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"error":{"message":"unsupported artifact"}}`))
			return
		}
		id := "scan-" + string(rune('a'+a.n.Add(1)))
		a.scans[id] = req.Artifact.Digest
		w.Header().Set("Content-Type", harbor.ScanResponseType)
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"` + id + `"}`))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/scan/") && strings.HasSuffix(r.URL.Path, "/report"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/scan/"), "/report")
		if r.Header.Get("Accept") != harbor.ReportMIMEType {
			http.Error(w, "bad accept", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		d, ok := a.scans[id]
		a.polls[id]++
		n := a.polls[id]
		a.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if n <= a.pending {
			w.Header().Set("Refresh-After", "1")
			w.Header().Set("Location", r.URL.Path)
			w.WriteHeader(http.StatusFound)
			return
		}
		b, err := os.ReadFile("testdata/report.json")
		if err != nil {
			a.t.Error(err)
		}
		w.Header().Set("Content-Type", harbor.ReportMIMEType)
		w.Write([]byte(strings.Replace(string(b), "DIGEST", d, 1)))
	default:
		http.NotFound(w, r)
	}
}

func newAdapter(t *testing.T) (*adapter, *httptest.Server) {
	a := &adapter{t: t, known: map[string]bool{}, scans: map[string]string{}, polls: map[string]int{}, pending: 2}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv
}

func creds(ctx context.Context, repo string) (string, string, error) {
	return "https://registry.example", "Bearer pull-only:" + repo, nil
}

func newScanner(t *testing.T, url string) *harbor.Scanner {
	s, err := harbor.New(url, creds, &harbor.Options{Authorization: "Bearer adapter-secret", MaxPollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScan(t *testing.T) {
	a, srv := newAdapter(t)
	s := newScanner(t, srv.URL)
	img, _ := random.Image(100, 1)
	d, _ := img.Digest()
	a.known[d.String()] = true
	r, err := s.Scan(context.Background(), img, &scan.Options{Repository: "team/app"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != scan.StatusSucceeded || r.Digest != d.String() || len(r.Vulnerabilities) != 3 || r.LastScanned.IsZero() {
		t.Fatalf("report: %+v", r)
	}
	v := r.Vulnerabilities[0]
	if v.ID != "CVE-2023-45288" || v.Score != 7.5 || v.Severity != scan.SeverityHigh || v.SeveritySource != "nvd" || len(v.Ratings) != 2 || !v.Fixable {
		t.Errorf("first: %+v", v)
	}
	if v := r.Vulnerabilities[1]; v.ID != "CVE-2024-0727" || v.SeveritySource != "adapter" || v.Score != 5.5 {
		t.Errorf("second: %+v", v)
	}
	if v := r.Vulnerabilities[2]; v.Severity != scan.SeverityLow || v.Fixable {
		t.Errorf("third: %+v", v)
	}
	if a.polls["scan-b"] != 3 {
		t.Errorf("polled %d times, want 3 (two 302s, then 200)", a.polls["scan-b"])
	}
	if mt, _ := a.lastReq.Load().(string); mt == "" {
		t.Error("no mime_type in the scan request")
	}
	dv, err := s.DBVersion(context.Background())
	if err != nil || dv != "Trivy/v0.58.0@2026-11-23T06:00:00Z" {
		t.Errorf("DBVersion = %q, %v", dv, err)
	}
}

func TestErrors(t *testing.T) {
	_, srv := newAdapter(t)
	if _, err := harbor.New("ftp://x", creds, nil); err == nil {
		t.Error("accepted a non-HTTP endpoint")
	}
	if _, err := harbor.New("https://user:pw@x", creds, nil); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("credentials in URL: %v", err)
	}
	if _, err := harbor.New(srv.URL, nil, nil); err == nil {
		t.Error("accepted nil credentials")
	}
	s, _ := harbor.New(srv.URL, creds, &harbor.Options{Authorization: "Bearer wrong"})
	img, _ := random.Image(100, 1)
	_, err := s.Scan(context.Background(), img, &scan.Options{Repository: "team/app"})
	if err == nil || strings.Contains(err.Error(), "pull-only") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("unauthorized scan: %v", err)
	}
	if _, err := s.Scan(context.Background(), img, nil); err == nil {
		t.Error("scan without repository succeeded")
	}
	if o := (&harbor.Options{Authorization: "Bearer secret"}).String(); strings.Contains(o, "secret") {
		t.Errorf("Options.String leaks: %s", o)
	}
}

func TestConformance(t *testing.T) {
	a, srv := newAdapter(t)
	scantest.RunScannerTests(t, scantest.Harness{
		NewScanner: func(t *testing.T) scan.Scanner { return newScanner(t, srv.URL) },
		Options:    &scan.Options{Repository: "team/app"},
		Known: func(t *testing.T, _ scan.Scanner) (v1.Image, []string) {
			img, _ := random.Image(100, 1)
			d, _ := img.Digest()
			a.mu.Lock()
			a.known[d.String()] = true
			a.mu.Unlock()
			return img, []string{"CVE-2023-45288"}
		},
	})
}

func TestBearerCredentials(t *testing.T) {
	var asked []string
	creds, err := harbor.BearerCredentials("https://registry.example:5000", func(ctx context.Context, repo string) (string, error) {
		asked = append(asked, repo)
		if repo == "broken/app" {
			return "", errors.New("token service down")
		}
		return "tok-" + strings.ReplaceAll(repo, "/", "."), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	u, auth, err := creds(context.Background(), "team/app")
	if err != nil || u != "https://registry.example:5000" || auth != "Bearer tok-team.app" {
		t.Errorf("credentials = %q, %q, %v", u, auth, err)
	}
	if _, _, err := creds(context.Background(), "broken/app"); err == nil {
		t.Error("a minter error was not returned")
	}
	if !slices.Equal(asked, []string{"team/app", "broken/app"}) {
		t.Errorf("minted for %v, want one token per scan, for its repository", asked)
	}
	empty, _ := harbor.BearerCredentials("https://r", func(context.Context, string) (string, error) { return "", nil })
	if _, _, err := empty(context.Background(), "a"); err == nil {
		t.Error("an empty token was accepted")
	}
	for _, bad := range []string{"", "ftp://r", "https://user:pw@r", "r:5000"} {
		if _, err := harbor.BearerCredentials(bad, func(context.Context, string) (string, error) { return "t", nil }); err == nil {
			t.Errorf("BearerCredentials(%q) accepted", bad)
		}
	}
	if _, err := harbor.BearerCredentials("https://r", nil); err == nil {
		t.Error("nil minter accepted")
	}
}
