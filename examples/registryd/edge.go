package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/webhook"
	"github.com/berth-dev/berth/internal/egress"
	"github.com/berth-dev/berth/internal/location"
	"github.com/berth-dev/berth/internal/tlsutil"
	"github.com/berth-dev/berth/storage"

	gcs "cloud.google.com/go/storage"
)

// edgeConfig holds the settings of what crosses the server's edge: TLS on
// its listeners, where its resources may live, where it may connect to,
// and signed URLs.
type edgeConfig struct {
	tlsMinVersion, tlsClientCA                string
	allowedLocations, location, locationHints string
	egressAllow, webhookURLs                  string
	signedURLKeys                             string
	signedURLMaxTTL                           time.Duration

	// Set by checkEdge and serverTLS.
	tlsConfig *tls.Config
	outbound  *outbound
	locations *location.Checker
	askBlob   bool // the bucket must be asked where it is
}

// edgeFlags registers the edge settings on fs, with defaults from env.
func (e *edgeConfig) edgeFlags(fs *flag.FlagSet, env func(name, def string) string) error {
	fs.StringVar(&e.tlsMinVersion, "tls-min-version", env("tls-min-version", "1.3"), "lowest TLS version served: 1.3, or 1.2 for old clients")
	fs.StringVar(&e.tlsClientCA, "tls-client-ca", env("tls-client-ca", ""), "PEM CA file: require client certificates it issued (mutual TLS) on every listener")
	fs.StringVar(&e.allowedLocations, "allowed-locations", env("allowed-locations", ""), "comma-separated locations storage, keys, metadata and events may be in (eu-central-1, europe-west3, germanywestcentral, local, …); empty: not checked")
	fs.StringVar(&e.location, "location", env("location", ""), "where this server runs; required with --allowed-locations")
	fs.StringVar(&e.locationHints, "location-hint", env("location-hint", ""), "locations URLs do not say, as kind=location pairs: blob=…,keeper=…,meta=…,events=…")
	fs.StringVar(&e.egressAllow, "egress-allow", env("egress-allow", ""), "comma-separated hosts[:port], *.domains, IPs[:port] and CIDRs outbound connections may reach ('*' for any; names resolving to loopback or private addresses also need their network); default: only the configured endpoints")
	fs.StringVar(&e.webhookURLs, "webhook-url", env("webhook-url", ""), "comma-separated https endpoints receiving events, signed with BERTH_WEBHOOK_SECRET")
	fs.StringVar(&e.signedURLKeys, "signed-url-keys", env("signed-url-keys", ""), "signed-URL key file, \"ID BASE64\" lines oldest first (default: DATA/signed-url-keys, generated)")
	ttl, err := time.ParseDuration(env("signed-url-max-ttl", "1h"))
	if err != nil {
		return fmt.Errorf("BERTH_SIGNED_URL_MAX_TTL: %w", err)
	}
	fs.DurationVar(&e.signedURLMaxTTL, "signed-url-max-ttl", ttl, "longest lifetime of a signed URL (at most 168h)")
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// outbound is the one way out of the server: the egress allowlist and the
// HTTP client that enforces it. Every outbound HTTP request (webhooks,
// key-set fetches, external scanners, pull-through upstreams) goes
// through client, and every configured destination is checked with allow
// at start-up.
type outbound struct {
	policy *egress.Policy
	client *http.Client
}

// allow checks a configured outbound URL against the allowlist; setting
// names the flag in the error.
func (o *outbound) allow(setting string, u *url.URL) error {
	if err := o.policy.AllowURL(u); err != nil {
		return fmt.Errorf("%s %s: %w; add its host to --egress-allow", setting, location.Redact(u.String()), err)
	}
	return nil
}

// checkEdge checks the configuration before anything is opened: every
// resource in an allowed location, every outbound destination on the
// egress allowlist, and TLS settings that fit together. It builds the
// outbound client.
func checkEdge(c *config, log *slog.Logger) error {
	if c.insecureHTTP && c.tlsClientCA != "" {
		return errors.New("--tls-client-ca needs TLS: drop --insecure-http")
	}
	if v, err := tlsutil.ParseVersion(c.tlsMinVersion); err != nil {
		return fmt.Errorf("--tls-min-version: %w", err)
	} else if v < tls.VersionTLS13 && !c.insecureHTTP {
		log.Warn("TLS 1.2 is accepted (--tls-min-version): CCC.Core.C01.TR01 requires TLS 1.3 on every port")
	}
	if c.allowedLocations != "" {
		hints, err := location.ParseHints(c.locationHints)
		if err != nil {
			return fmt.Errorf("--location-hint: %w", err)
		}
		lc, err := location.NewChecker(splitList(c.allowedLocations), hints, &location.Options{Getenv: os.Getenv, HintFlag: "--location-hint"})
		if err != nil {
			return fmt.Errorf("--allowed-locations: %w", err)
		}
		if err := lc.CheckSelf("--location", c.location); err != nil {
			return err
		}
		found := []any{"allowed", lc.Allowed(), "server", strings.ToLower(c.location)}
		for _, s := range []struct {
			kind    location.Kind
			setting string
			url     string
		}{{location.Blob, "--blob-url", c.blobURL}, {location.Keeper, "--keeper-url", c.keeperURL}, {location.Metadata, "--meta-url", c.metaURL}, {location.Events, "--events-url", c.eventsURL}} {
			loc, err := lc.Check(s.kind, s.setting, s.url)
			var ask *location.AskError
			if errors.As(err, &ask) && s.kind == location.Blob {
				c.askBlob, loc = true, "(asked once opened)"
			} else if err != nil {
				return err
			}
			if loc != "" {
				found = append(found, string(s.kind), loc)
			}
		}
		c.locations = lc
		log.Info("locations checked", found...)
	} else if c.location != "" || c.locationHints != "" {
		return errors.New("--location and --location-hint need --allowed-locations")
	}

	// Every configured outbound destination, with the setting naming it.
	var dests []destination
	for _, h := range splitList(c.webhookURLs) {
		dests = append(dests, destination{"--webhook-url", h})
	}
	if c.scannerURL != "" {
		dests = append(dests, destination{"--scanner-url", c.scannerURL})
	}
	for _, spec := range c.upstreams {
		u, err := parseUpstream(spec)
		if err != nil {
			return err
		}
		dests = append(dests, destination{"--upstream", u.URL})
	}
	var derived []string
	for _, d := range dests {
		u, err := url.Parse(d.url)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
			return fmt.Errorf("%s %s: want an https URL (http only on loopback)", d.setting, location.Redact(d.url))
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		derived = append(derived, net.JoinHostPort(u.Hostname(), port))
	}
	entries := splitList(c.egressAllow)
	explicit := len(entries) > 0
	if !explicit {
		// Deny all egress except the endpoints the configuration names.
		entries = derived
	}
	policy, err := egress.ParsePolicy(entries)
	if err != nil {
		return fmt.Errorf("--egress-allow: %w", err)
	}
	client, err := egress.NewClient(&egress.Options{Policy: policy, Logger: log})
	if err != nil {
		return err
	}
	c.outbound = &outbound{policy: policy, client: client}
	for _, d := range dests {
		u, _ := url.Parse(d.url)
		if err := c.outbound.allow(d.setting, u); err != nil {
			return err
		}
	}
	if c.webhookURLs != "" && len(os.Getenv("BERTH_WEBHOOK_SECRET")) < 16 {
		return errors.New("--webhook-url needs BERTH_WEBHOOK_SECRET, at least 16 bytes, to sign deliveries")
	}
	log.Info("egress allowlist", "policy", policy.String(), "explicit", explicit)
	return nil
}

// checkBucketLocation asks a Cloud Storage bucket where it is, when its
// URL does not say, and checks the answer; it runs once the store is open
// and before anything is served.
func checkBucketLocation(ctx context.Context, c *config, store *storage.Store, log *slog.Logger) error {
	if !c.askBlob {
		return nil
	}
	shown := location.Redact(c.blobURL)
	var client *gcs.Client
	u, err := url.Parse(c.blobURL)
	if err != nil || !store.As(&client) {
		return fmt.Errorf("location: --blob-url %s: cannot ask the bucket where it is; give its location with --location-hint blob=<location>", shown)
	}
	attrs, err := client.Bucket(u.Host).Attrs(ctx)
	if err != nil {
		return fmt.Errorf("location: --blob-url %s: reading the bucket's location (permission storage.buckets.get): %w", shown, err)
	}
	loc, err := c.locations.CheckReported(location.Blob, "--blob-url", c.blobURL, attrs.Location)
	if err != nil {
		return err
	}
	log.Info("bucket location checked", "blob", loc)
	return nil
}

// destination is a configured outbound URL and the setting naming it.
type destination struct{ setting, url string }

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// serverTLS returns the TLS configuration of every listener: the
// configured or a generated self-signed certificate, the minimum version
// and, with --tls-client-ca, mutual TLS.
func serverTLS(c *config, stderr io.Writer) (*tls.Config, error) {
	certFile, keyFile := c.tlsCert, c.tlsKey
	if certFile == "" {
		host, _, _ := net.SplitHostPort(c.addr)
		ss, err := tlsutil.EnsureSelfSigned(filepath.Join(c.data, "tls"), []string{host})
		if err != nil {
			return nil, err
		}
		certFile, keyFile = ss.CertFile, ss.KeyFile
		fmt.Fprintf(stderr, "registryd: TLS certificate is self-signed; trust its CA: %s\n", ss.CAFile)
	}
	cert, err := tlsutil.LoadCertificate(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	opts := &tlsutil.ServerOptions{}
	if opts.MinVersion, err = tlsutil.ParseVersion(c.tlsMinVersion); err != nil {
		return nil, fmt.Errorf("--tls-min-version: %w", err)
	}
	if c.tlsClientCA != "" {
		if opts.ClientCAs, err = tlsutil.LoadCertPool(c.tlsClientCA); err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
	}
	return tlsutil.NewServerConfig(cert, opts)
}

// newSigner loads the signed-URL keys, generating DATA/signed-url-keys on
// first start when no key file is configured.
func newSigner(c *config) (*signedurl.Signer, error) {
	path := c.signedURLKeys
	if path == "" {
		path = filepath.Join(c.data, "signed-url-keys")
	}
	keys, err := signedurl.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := signedurl.NewSigner(keys, &signedurl.Options{MaxTTL: c.signedURLMaxTTL})
	if err != nil {
		return nil, fmt.Errorf("signed URLs: %w", err)
	}
	return s, nil
}

// signedURLs returns the handler minting signed URLs for callers holding
// pull, wrapped around next.
func signedURLs(s *signedurl.Signer, meta signedurl.Lookup, authorize func(r *http.Request, repo string, actions ...string) (*auth.Identity, error), next http.Handler, log *slog.Logger) (http.Handler, error) {
	h, err := signedurl.NewHandler(s, meta, func(r *http.Request, repo string) (*auth.Identity, error) {
		return authorize(r, repo, auth.Pull)
	}, &signedurl.HandlerOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	return h.Wrap(next), nil
}

// openPublisher opens the event topic, if any, and a webhook sender per
// --webhook-url over the outbound client. The returned function closes
// them.
func openPublisher(ctx context.Context, c *config, log *slog.Logger) (*events.Publisher, func(), error) {
	var topics []string
	if c.eventsURL != "" {
		topics = append(topics, c.eventsURL)
	}
	pub, err := events.OpenPublisher(ctx, topics...)
	if err != nil {
		return nil, nil, err
	}
	var senders []*webhook.Sender
	closeAll := func() {
		for _, s := range senders {
			_ = s.Close()
		}
		_ = pub.Close(context.Background())
	}
	for _, h := range splitList(c.webhookURLs) {
		s, err := webhook.New(h, &webhook.Options{
			Secret: []byte(os.Getenv("BERTH_WEBHOOK_SECRET")),
			Allow:  func(u *url.URL) error { return c.outbound.allow("--webhook-url", u) },
			Client: c.outbound.client,
			Logger: log,
		})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		senders = append(senders, s)
		pub.Add(s)
	}
	return pub, closeAll, nil
}
