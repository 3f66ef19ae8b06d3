// Package harbor is a client of the Harbor Scanner Adapter API v1.1
// (https://github.com/goharbor/pluggability-spec), which lets any scanner
// with such an adapter (Trivy, Clair, Anchore, Aqua, …) scan Berth's
// images. It implements scan.Scanner and scan.DBVersioner.
//
// A scan is a request to the adapter: POST /api/v1/scan with the
// registry's URL, a pull credential and the artifact (repository and
// digest), answered by 202 Accepted and a scan request ID; then GET
// /api/v1/scan/{id}/report with Accept set to [ReportMIMEType], answered
// by 302 Found with a Refresh-After header (seconds) while the scan runs,
// and 200 OK with the vulnerability report when it is done. The adapter
// pulls the image from the registry itself, so Scan needs
// scan.Options.Repository; the image argument only supplies the digest.
//
// # Credentials
//
// The registry credential comes from a [Credentials] callback called for
// every scan, so that it can mint a short-lived token allowed to pull
// only that repository; [BearerCredentials] builds one from a
// [TokenMinter]. The credential is sent to the adapter in the
// scan request body and never logged or included in errors.
//
// # Errors
//
// Transport errors and unexpected statuses are returned as errors (the
// Pipeline retries them); an adapter's 422 Unprocessable Entity ("this
// artifact cannot be scanned") yields a scan.StatusUnknown report.
// Error bodies are quoted only up to 512 bytes.
//
// # Concurrency
//
// A Scanner is safe for concurrent use.
//
// # Security
//
// Responses are read with a size bound (Options.MaxReportSize). Polling
// honours Refresh-After but is clamped to Options.MaxPollInterval, and a
// scan gives up after Options.Timeout.
package harbor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MIME types of the Scanner Adapter API v1.1.
const (
	ReportMIMEType   = "application/vnd.security.vulnerability.report; version=1.1"
	MetadataMIMEType = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	ScanRequestType  = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	ScanResponseType = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	errorMIMEType    = "application/vnd.scanner.adapter.error"
)

// Credentials returns the registry base URL the adapter should pull from
// (e.g. "https://registry.example:5000") and the value of the
// Authorization header it should use ("Basic …" or "Bearer …"), for a
// pull of repo only. It is called once per scan, with the scan's context.
type Credentials func(ctx context.Context, repo string) (registryURL, authorization string, err error)

// TokenMinter returns a bearer token that allows pulling repo and
// nothing else, valid for a short time (long enough for the adapter to
// pull the image). registryd backs it with its Docker token service
// (auth/token.Service.Issue for an identity whose only scope is
// "repository:<repo>:pull").
type TokenMinter func(ctx context.Context, repo string) (token string, err error)

// BearerCredentials returns Credentials that give the adapter registryURL
// and a token minted for each scan, for that scan's repository only: an
// adapter (or whoever reads its logs) never holds a credential that
// outlives the scan or reaches another repository.
func BearerCredentials(registryURL string, mint TokenMinter) (Credentials, error) {
	u, err := url.Parse(registryURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("harbor: the registry URL must be an http or https URL without credentials")
	}
	if mint == nil {
		return nil, errors.New("harbor: nil TokenMinter")
	}
	return func(ctx context.Context, repo string) (string, string, error) {
		tok, err := mint(ctx, repo)
		if err != nil {
			return "", "", err
		}
		if tok == "" || strings.ContainsAny(tok, " \r\n") {
			return "", "", errors.New("harbor: the token minter returned an empty or malformed token")
		}
		return registryURL, "Bearer " + tok, nil
	}, nil
}

// Options configure a Scanner. The zero value is valid.
type Options struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Authorization is sent to the adapter itself as the Authorization
	// header, when the adapter requires it; "" sends none. Redacted by
	// String.
	Authorization string
	// Name is reported in scan.Info.Name; "" means "harbor-adapter".
	Name string
	// MaxPollInterval caps Refresh-After; 0 means 30s.
	MaxPollInterval time.Duration
	// Timeout bounds one scan, from request to report; 0 means 30m.
	Timeout time.Duration
	// MaxReportSize bounds a response body; 0 means 64 MiB.
	MaxReportSize int64
	// Now returns LastScanned; nil means time.Now.
	Now func() time.Time
}

// String describes the options with the adapter credential redacted.
func (o *Options) String() string {
	auth := ""
	if o.Authorization != "" {
		auth = "REDACTED"
	}
	return fmt.Sprintf("harbor.Options{Name: %q, Authorization: %q, MaxPollInterval: %v, Timeout: %v, MaxReportSize: %d}",
		o.Name, auth, o.MaxPollInterval, o.Timeout, o.MaxReportSize)
}

// Scanner is a Harbor Scanner Adapter client.
type Scanner struct {
	base  *url.URL
	creds Credentials
	opts  Options
}

// New returns a Scanner for the adapter at endpoint (its base URL, e.g.
// "http://trivy-adapter:8080"). creds must not be nil; opts may be.
func New(endpoint string, creds Credentials, opts *Options) (*Scanner, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("harbor: endpoint must be an http or https URL")
	}
	if u.User != nil {
		return nil, errors.New("harbor: credentials in the endpoint URL are not accepted; use Options.Authorization")
	}
	if creds == nil {
		return nil, errors.New("harbor: nil Credentials")
	}
	s := &Scanner{base: u, creds: creds}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.MaxPollInterval < 0 || o.Timeout < 0 || o.MaxReportSize < 0 {
		return nil, errors.New("harbor: negative option")
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Name == "" {
		o.Name = "harbor-adapter"
	}
	if o.MaxPollInterval == 0 {
		o.MaxPollInterval = 30 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.MaxReportSize == 0 {
		o.MaxReportSize = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return s, nil
}

// Info implements scan.Scanner.
func (s *Scanner) Info() scan.Info { return scan.Info{Name: s.opts.Name} }

// Metadata is the adapter's self-description (GET /api/v1/metadata).
type Metadata struct {
	Scanner struct {
		Name    string `json:"name"`
		Vendor  string `json:"vendor"`
		Version string `json:"version"`
	} `json:"scanner"`
	Capabilities []struct {
		ConsumesMIMETypes []string `json:"consumes_mime_types"`
		ProducesMIMETypes []string `json:"produces_mime_types"`
	} `json:"capabilities"`
	Properties map[string]string `json:"properties"`
}

// DBUpdatedProperty is the metadata property carrying the time of the
// adapter's vulnerability database.
const DBUpdatedProperty = "harbor.scanner-adapter/vulnerability-database-updated-at"

// Metadata fetches the adapter's metadata.
func (s *Scanner) Metadata(ctx context.Context) (*Metadata, error) {
	req, err := s.request(ctx, http.MethodGet, "/api/v1/metadata", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", MetadataMIMEType)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("harbor: metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, s.statusError("metadata", resp)
	}
	var m Metadata
	if err := s.decode(resp, &m); err != nil {
		return nil, fmt.Errorf("harbor: metadata: %w", err)
	}
	return &m, nil
}

// DBVersion implements scan.DBVersioner: the adapter's scanner version
// and vulnerability-database update time.
func (s *Scanner) DBVersion(ctx context.Context) (string, error) {
	m, err := s.Metadata(ctx)
	if err != nil {
		return "", err
	}
	v := m.Scanner.Name + "/" + m.Scanner.Version
	if t := m.Properties[DBUpdatedProperty]; t != "" {
		v += "@" + t
	}
	return v, nil
}

type scanRequest struct {
	Registry struct {
		URL           string `json:"url"`
		Authorization string `json:"authorization"`
	} `json:"registry"`
	Artifact struct {
		Repository string `json:"repository"`
		Digest     string `json:"digest"`
		MIMEType   string `json:"mime_type,omitempty"`
	} `json:"artifact"`
}

// Scan implements scan.Scanner. opts.Repository is required.
func (s *Scanner) Scan(ctx context.Context, img v1.Image, opts *scan.Options) (*scan.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("harbor: %w", err)
	}
	if opts == nil || opts.Repository == "" {
		return nil, errors.New("harbor: scan.Options.Repository is required: the adapter pulls the image from the registry")
	}
	d := opts.Digest
	if d == (v1.Hash{}) {
		var err error
		if d, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("harbor: %w", err)
		}
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("harbor: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	regURL, auth, err := s.creds(ctx, opts.Repository)
	if err != nil {
		return nil, fmt.Errorf("harbor: credentials for %s: %w", opts.Repository, err)
	}
	var sr scanRequest
	sr.Registry.URL, sr.Registry.Authorization = regURL, auth
	sr.Artifact.Repository, sr.Artifact.Digest, sr.Artifact.MIMEType = opts.Repository, d.String(), string(mt)
	body, err := json.Marshal(&sr)
	if err != nil {
		return nil, err
	}
	req, err := s.request(ctx, http.MethodPost, "/api/v1/scan", body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ScanRequestType)
	req.Header.Set("Accept", ScanResponseType)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("harbor: scan request: %w", unwrapCtx(ctx, err))
	}
	r := s.newReport(d)
	switch resp.StatusCode {
	case http.StatusAccepted:
	case http.StatusUnprocessableEntity:
		msg := s.errorMessage(resp)
		resp.Body.Close()
		r.Status, r.Reason = scan.StatusUnknown, "adapter cannot scan this artifact: "+msg
		r.LastScanned = s.opts.Now().UTC()
		_ = r.Finalize()
		return r, nil
	default:
		defer resp.Body.Close()
		return nil, s.statusError("scan request", resp)
	}
	var id struct {
		ID string `json:"id"`
	}
	err = s.decode(resp, &id)
	resp.Body.Close()
	if err != nil || id.ID == "" {
		return nil, fmt.Errorf("harbor: scan response without id: %v", err)
	}
	return s.poll(ctx, id.ID, r)
}

func (s *Scanner) newReport(d v1.Hash) *scan.Report {
	return &scan.Report{Scanner: s.Info(), Digest: d.String(), Status: scan.StatusSucceeded}
}

func (s *Scanner) poll(ctx context.Context, id string, r *scan.Report) (*scan.Report, error) {
	p := "/api/v1/scan/" + url.PathEscape(id) + "/report"
	for {
		req, err := s.request(ctx, http.MethodGet, p, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", ReportMIMEType)
		resp, err := s.opts.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("harbor: report: %w", unwrapCtx(ctx, err))
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var hr harborReport
			err := s.decode(resp, &hr)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("harbor: report: %w", err)
			}
			convert(&hr, r)
			r.LastScanned = s.opts.Now().UTC()
			_ = r.Finalize()
			return r, nil
		case http.StatusFound:
			wait := s.opts.MaxPollInterval
			if sec, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Refresh-After"))); err == nil && sec >= 0 {
				wait = min(time.Duration(sec)*time.Second, wait)
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("harbor: waiting for report: %w", context.Cause(ctx))
			case <-t.C:
			}
		default:
			defer resp.Body.Close()
			return nil, s.statusError("report", resp)
		}
	}
}

func unwrapCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Scanner) request(ctx context.Context, method, p string, body []byte) (*http.Request, error) {
	u := s.base.JoinPath(p)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if s.opts.Authorization != "" {
		req.Header.Set("Authorization", s.opts.Authorization)
	}
	return req, nil
}

func (s *Scanner) decode(resp *http.Response, v any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxReportSize+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > s.opts.MaxReportSize {
		return fmt.Errorf("response larger than %d bytes", s.opts.MaxReportSize)
	}
	return json.Unmarshal(b, v)
}

func (s *Scanner) errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return strconv.Quote(e.Error.Message)
	}
	return strconv.Quote(string(b))
}

func (s *Scanner) statusError(op string, resp *http.Response) error {
	return fmt.Errorf("harbor: %s: unexpected status %s: %s", op, resp.Status, s.errorMessage(resp))
}

// harborReport is the vulnerability report of API v1.1.
type harborReport struct {
	GeneratedAt string `json:"generated_at"`
	Artifact    struct {
		Repository string `json:"repository"`
		Digest     string `json:"digest"`
	} `json:"artifact"`
	Scanner struct {
		Name    string `json:"name"`
		Vendor  string `json:"vendor"`
		Version string `json:"version"`
	} `json:"scanner"`
	Severity        string `json:"severity"`
	Vulnerabilities []struct {
		ID            string   `json:"id"`
		Package       string   `json:"package"`
		Version       string   `json:"version"`
		FixVersion    string   `json:"fix_version"`
		Severity      string   `json:"severity"`
		Description   string   `json:"description"`
		Links         []string `json:"links"`
		PreferredCVSS *struct {
			VectorV2 string `json:"vector_v2"`
			VectorV3 string `json:"vector_v3"`
		} `json:"preferred_cvss"`
		VendorAttributes struct {
			CVSS map[string]struct {
				V2Vector  string `json:"V2Vector"`
				V3Vector  string `json:"V3Vector"`
				V40Vector string `json:"V40Vector"`
			} `json:"CVSS"`
		} `json:"vendor_attributes"`
	} `json:"vulnerabilities"`
}

func convert(hr *harborReport, r *scan.Report) {
	r.Vulnerabilities = make([]scan.Vulnerability, 0, len(hr.Vulnerabilities))
	for _, v := range hr.Vulnerabilities {
		f := scan.Vulnerability{
			ID:           v.ID,
			Package:      scan.Package{Name: v.Package, Version: v.Version},
			FixedVersion: v.FixVersion,
			Description:  v.Description,
			References:   append([]string(nil), v.Links...),
		}
		f.Severity, _ = scan.ParseSeverity(v.Severity)
		for src, c := range v.VendorAttributes.CVSS {
			for _, vec := range []string{c.V40Vector, c.V3Vector, c.V2Vector} {
				if vec != "" {
					f.Ratings = append(f.Ratings, scan.Rating{Source: src, Vector: vec})
				}
			}
		}
		if len(f.Ratings) == 0 && v.PreferredCVSS != nil {
			for _, vec := range []string{v.PreferredCVSS.VectorV3, v.PreferredCVSS.VectorV2} {
				if vec != "" {
					f.Ratings = append(f.Ratings, scan.Rating{Source: "adapter", Vector: vec})
				}
			}
		}
		r.Vulnerabilities = append(r.Vulnerabilities, f)
	}
}
