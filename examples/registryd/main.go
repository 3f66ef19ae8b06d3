// Command registryd is a complete Berth registry server: the OCI
// distribution API over encrypted blob storage and SQL metadata, with
// authentication and TLS, all with safe defaults.
//
//	go run ./examples/registryd
//
// starts a registry on 127.0.0.1:5000 with its data under ./berth-data: a
// file bucket, a SQLite database, a generated key-encryption key, and TLS
// with a generated self-signed certificate whose CA file it names on
// start-up. The bootstrap user "admin" may do everything; its password is
// BERTH_ADMIN_PASSWORD when set, otherwise generated on first start and
// written to DATA/admin-password (mode 0600).
//
// Flags (each also read from BERTH_<NAME>, e.g. BERTH_META_URL):
//
//	--addr           listen address (default 127.0.0.1:5000)
//	--data DIR       data directory (default ./berth-data)
//	--insecure-http  serve plain HTTP (loopback and tests only)
//	--tls-cert, --tls-key  certificate and key files (default: generated)
//	--blob-url       gocloud.dev blob URL (default file://DATA/blobs)
//	--meta-url       sqlite://PATH or postgres://… (default sqlite://DATA/meta.db)
//	--keeper-url     gocloud.dev secrets URL (default: the key file DATA/kek)
//	--cache-content  keep blobs of 4 MiB and more of a local --blob-url in the
//	                 page cache (default: dropped once on disk; see
//	                 storage.Options.CacheContent)
//	--events-url     gocloud.dev pubsub topic URL for events (mem://, nats://…)
//	--metrics-addr   serve Prometheus metrics on this internal address
//	--rate-limit     requests per second per identity and per client (0: off)
//	--vulndb DIR     offline vulnerability data: OSV files (*.json, osv.dev
//	                 *.zip exports) for the native scanner (default DATA/vulndb)
//	--scanner-url    scan with this Harbor Scanner Adapter instead
//	--upstream PREFIX=URL[,ttl=DURATION][,public]
//	                 pull-through cache of the registry at URL under PREFIX
//	                 (repeatable; URL's path is the remote prefix)
//	--upstream-credentials FILE  JSON upstream credentials by prefix (mode 0600)
//	--tls-min-version     1.3 (default) or 1.2, on every listener
//	--tls-client-ca FILE  require client certificates from this CA (mTLS)
//	--allowed-locations   locations storage, keys, metadata and events may be in
//	--location            where this server runs (required with --allowed-locations)
//	--location-hint       kind=location pairs for URLs that do not say (blob, keeper, meta, events)
//	--egress-allow        hosts, *.domains, IPs, CIDRs outbound requests may reach
//	                      (default: only the configured endpoints; "*": any)
//	--webhook-url         https endpoints receiving events (BERTH_WEBHOOK_SECRET signs them)
//	--signed-url-keys     signed-URL key file (default DATA/signed-url-keys, generated)
//	--signed-url-max-ttl  longest signed-URL lifetime (default 1h)
//	--allowed-clients     networks (CIDR, comma-separated) that may connect; others are reset
//	--access-log-url      also send every access record to this bucket or topic (outside --data)
//
// Every HTTPS response carries Strict-Transport-Security; plain HTTP
// (--insecure-http) never does. Signed URLs are minted with
// POST /api/v1/repositories/{name}/signed-urls by callers holding pull.
//
// Every pushed image is scanned in the background (see scan.go): reports
// are served at /api/v1/repositories/{name}/images/{digest}/vulnerabilities
// and rescans are requested with POST …/images/{digest}/scan. Without
// vulnerability data, reports have status Unknown, never a clean bill.
//
// Registry tokens created with a rate limit of their own are held to it
// whatever --rate-limit says. With PostgreSQL metadata the limits are
// shared by every node using the database (events.SharedLimiter);
// otherwise each process keeps its own.
//
// Every request is recorded in DATA/access-<start time>.log as hash-chained
// JSON lines (see events.VerifyAccessLog).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/bearer"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/throttle"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/events"
	_ "github.com/berth-dev/berth/events/natsevents" // nats:// event topics
	"github.com/berth-dev/berth/internal/tlsutil"
	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/sqlmeta"
	_ "gocloud.dev/pubsub/mempubsub" // mem:// event topics

	_ "gocloud.dev/blob/azureblob"        // azblob:// buckets
	_ "gocloud.dev/blob/gcsblob"          // gs:// buckets
	_ "gocloud.dev/blob/s3blob"           // s3:// buckets
	_ "gocloud.dev/secrets/awskms"        // awskms:// key-encryption keys
	_ "gocloud.dev/secrets/azurekeyvault" // azurekeyvault:// key-encryption keys
	_ "gocloud.dev/secrets/gcpkms"        // gcpkms:// key-encryption keys
)

type config struct {
	addr, data, tlsCert, tlsKey, blobURL, metaURL, keeperURL, eventsURL string
	metricsAddr, vulnDB, scannerURL, upstreamCreds                      string
	allowedClients, accessLogURL                                        string
	upstreams                                                           []string
	rateLimit                                                           float64
	insecureHTTP                                                        bool
	cacheContent                                                        bool
	edgeConfig
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "registryd:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("registryd", flag.ContinueOnError)
	env := func(name, def string) string {
		if v, ok := os.LookupEnv("BERTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
			return v
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", env("addr", "127.0.0.1:5000"), "listen address")
	fs.StringVar(&c.data, "data", env("data", "./berth-data"), "data directory")
	fs.BoolVar(&c.insecureHTTP, "insecure-http", env("insecure-http", "") == "true" || env("insecure-http", "") == "1", "serve plain HTTP (loopback and tests only)")
	fs.StringVar(&c.tlsCert, "tls-cert", env("tls-cert", ""), "TLS certificate file (default: generated self-signed)")
	fs.StringVar(&c.tlsKey, "tls-key", env("tls-key", ""), "TLS key file")
	fs.StringVar(&c.blobURL, "blob-url", env("blob-url", ""), "gocloud.dev blob URL (default file://DATA/blobs)")
	fs.StringVar(&c.metaURL, "meta-url", env("meta-url", ""), "metadata URL: sqlite://PATH or postgres://… (default sqlite://DATA/meta.db)")
	fs.BoolVar(&c.cacheContent, "cache-content", env("cache-content", "") == "true" || env("cache-content", "") == "1", "keep large blobs of a local data directory in the page cache (default: dropped once on disk)")
	fs.StringVar(&c.keeperURL, "keeper-url", env("keeper-url", ""), "gocloud.dev secrets URL of the key-encryption key (default: key file DATA/kek)")
	fs.StringVar(&c.eventsURL, "events-url", env("events-url", ""), "gocloud.dev pubsub topic URL for events")
	fs.StringVar(&c.metricsAddr, "metrics-addr", env("metrics-addr", ""), "serve Prometheus metrics at /metrics on this (internal) address")
	fs.StringVar(&c.vulnDB, "vulndb", env("vulndb", ""), "directory of OSV vulnerability data for the native scanner (default DATA/vulndb)")
	fs.StringVar(&c.scannerURL, "scanner-url", env("scanner-url", ""), "Harbor Scanner Adapter URL to scan with instead of the native scanner")
	fs.StringVar(&c.allowedClients, "allowed-clients", env("allowed-clients", ""), "networks (CIDR, comma-separated) that may connect; connections from elsewhere are reset before TLS (default: any)")
	fs.StringVar(&c.accessLogURL, "access-log-url", env("access-log-url", ""), "gocloud.dev bucket or topic URL receiving a copy of every access record, outside --data and the blob bucket")
	rl, err := strconv.ParseFloat(env("rate-limit", "0"), 64)
	if err != nil {
		return nil, fmt.Errorf("BERTH_RATE_LIMIT: %w", err)
	}
	fs.Float64Var(&c.rateLimit, "rate-limit", rl, "requests per second allowed per identity and per client address (burst 4×); 0 disables")
	if err := c.edgeFlags(fs, env); err != nil {
		return nil, err
	}
	upstreamFlags(fs, c, env)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	abs, err := filepath.Abs(c.data)
	if err != nil {
		return nil, err
	}
	c.data = abs
	if c.blobURL == "" {
		c.blobURL = "file://" + filepath.ToSlash(filepath.Join(c.data, "blobs"))
	}
	if c.vulnDB == "" {
		c.vulnDB = filepath.Join(c.data, "vulndb")
	}
	if c.metaURL == "" {
		c.metaURL = "sqlite://" + filepath.ToSlash(filepath.Join(c.data, "meta.db"))
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	return c, nil
}

// run starts the server and blocks until ctx is done, then shuts down
// gracefully. ready, when not nil, receives the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := checkEdge(c, log); err != nil {
		return err
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}

	// Key-encryption key.
	kopts := storage.Options{CacheContent: c.cacheContent}
	if c.keeperURL != "" {
		kopts.Keeper, kopts.KeyID, err = storage.OpenKeeper(ctx, c.keeperURL)
	} else {
		kopts.Keeper, kopts.KeyID, err = storage.LoadOrCreateKeyFile(filepath.Join(c.data, "kek"))
	}
	if err != nil {
		return err
	}
	defer kopts.Keeper.Close()

	meta, err := storage.OpenMetadata(ctx, c.metaURL)
	if err != nil {
		return err
	}
	defer meta.Close()
	kopts.Logger = log
	store, err := storage.Open(ctx, c.blobURL, meta, &kopts)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := checkBucketLocation(ctx, c, store, log); err != nil {
		return err
	}
	reg, err := store.Registry()
	if err != nil {
		return err
	}

	// Pull-through cache of upstream registries (--upstream), if any: its
	// repository lookup lets anonymous clients make the first pull from a
	// public upstream.
	mirror, repos, err := upstreams(c, store, reg, c.outbound.client, log)
	if err != nil {
		return err
	}

	password, err := adminPassword(c.data, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	if ln, err = perimeterListener(ln, c.allowedClients, log); err != nil {
		return err
	}
	scheme := "https"
	if c.insecureHTTP {
		scheme = "http"
	}
	base := scheme + "://" + ln.Addr().String()

	// Authentication: the bootstrap admin and registry tokens over HTTP
	// Basic; short-lived JWTs from the token service at /token over Bearer;
	// failed logins throttled; uploads started with a valid token may
	// finish after it expires, by the identity that started them; a JWT
	// stops working within token.DefaultRevalidateEvery of its registry
	// token's revocation. Authorization: the default policy.
	metrics, err := events.NewMetrics(nil)
	if err != nil {
		return err
	}
	limits, err := rateLimits(c, meta, metrics, log)
	if err != nil {
		return err
	}
	// Every identity, whatever its credentials, and every authorization
	// decision go into the access log; identities are rate limited.
	authz := events.ObserveAuthorizer(policy.New(repos))
	toks, err := tokens.New(reg, nil)
	if err != nil {
		return err
	}
	admin := basic.NewStatic("admin", password, auth.Identity{Admin: true})
	limiter, err := throttle.New(&throttle.Options{Logger: log})
	if err != nil {
		return err
	}
	key, err := token.LoadOrCreateKeyFile(filepath.Join(c.data, "token-key.pem"))
	if err != nil {
		return err
	}
	svc, err := token.NewService(key, events.ObserveAuthenticator(limiter.Wrap(basic.New(admin, toks)), limits), authz,
		&token.Options{Service: "berth", Revalidator: token.Revalidators{admin, toks, scannerSubjects{}}, Logger: log})
	if err != nil {
		return err
	}
	uploads := func(ctx context.Context, id string) (auth.UploadSession, error) {
		u, err := store.ResumeUpload(ctx, id)
		if err != nil {
			return auth.UploadSession{}, err
		}
		l := u.Labels()
		return auth.UploadSession{
			Repository: l[registry.UploadRepositoryLabel],
			StartedBy:  l[registry.UploadSubjectLabel],
			StartedAt:  u.StartedAt(),
		}, nil
	}
	signer, err := newSigner(c)
	if err != nil {
		return err
	}
	authn := events.ObserveAuthenticator(limiter.Wrap(signer.Wrap(auth.WithUploadSessions(auth.ByScheme(basic.New(admin, toks), bearer.New(svc.Verifier())), uploads))), limits)
	tokenAPI, err := tokens.NewAPI(toks, authn, authz, nil)
	if err != nil {
		return err
	}
	h, err := registry.New(store, &registry.Options{
		Authenticator: authn,
		Authorizer:    authz,
		Realm:         base + "/token",
		Subjects:      token.Revalidators{admin, toks},
		Service:       "berth",
		Logger:        log,
		Mirror:        mirror,
	})
	if err != nil {
		return err
	}

	// Lifecycle policies: the management routes beside the registry, and
	// the runner that applies them hourly.
	runner, err := lifecycle.NewRunner(reg, store, &lifecycle.Options{Logger: log})
	if err != nil {
		return err
	}
	lh, err := lifecycle.NewHandler(runner, func(r *http.Request, repo string, write bool) error {
		actions := []string{auth.Pull}
		if write {
			actions = []string{auth.Pull, auth.Push, auth.Delete}
		}
		_, err := h.Authorize(r, repo, actions...)
		return err
	}, &lifecycle.HandlerOptions{Identity: func(r *http.Request) string { return subjectOf(h.Identify(r)) }, Logger: log})
	if err != nil {
		return err
	}
	go func() {
		if err := runner.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("lifecycle runner stopped", "err", err)
		}
	}()
	go collectGarbage(ctx, store, log)

	mux := http.NewServeMux()
	api, err := withManagement(store, h, mux, log)
	if err != nil {
		return err
	}
	mux.Handle("/token", svc)
	mux.Handle("/api/v1/tokens", tokenAPI)
	mux.Handle("/api/v1/tokens/", tokenAPI)
	// Vulnerability scanning: scan on push, the report routes, rescans.
	scans, err := startScanning(ctx, c, store, reg, h, svc, base, log)
	if err != nil {
		return err
	}
	defer scans.Close()
	signed, err := signedURLs(signer, reg, h.Authorize, h, log)
	if err != nil {
		return err
	}
	mux.Handle("/", scans.Wrap(lh.Wrap(signed)))
	if !c.insecureHTTP {
		if c.tlsConfig, err = serverTLS(c, stderr); err != nil {
			return err
		}
	}
	// Access log (hash-chained JSON lines, one file per start), metrics,
	// rate limits, and the outbox relay.
	handler, err := observe(ctx, c, api, reg, metrics, limits, base, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           tlsutil.HSTS(handler, 0),
		TLSConfig:         c.tlsConfig.Clone(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.insecureHTTP {
		if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
			log.Warn("serving plain HTTP on a non-loopback address: credentials and content travel unencrypted", "addr", ln.Addr())
		}
	}
	log.Info("registryd starting", "url", base, "data", c.data,
		"blobs", redact(c.blobURL), "metadata", sqlmeta.Redact(c.metaURL), "storage", storeOptions(store))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() {
		if c.insecureHTTP {
			errc <- srv.Serve(ln)
		} else {
			errc <- srv.ServeTLS(ln, "", "")
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("registryd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// rateLimits returns the rate limits: --rate-limit per identity and per
// client address, a registry token's own limit for its identity; shared
// through the metadata database when it is PostgreSQL.
func rateLimits(c *config, meta driver.Metadata, metrics *events.Metrics, log *slog.Logger) (*events.RateLimit, error) {
	lim := events.Limit{Rate: c.rateLimit, Burst: max(1, int(4*c.rateLimit))}
	if c.rateLimit <= 0 {
		lim = events.Limit{}
	}
	var limiter events.Limiter
	shared, ok := meta.(driver.RateLimits)
	if ok && strings.HasPrefix(c.metaURL, "postgres") {
		o := &events.SharedLimiterOptions{Address: lim, Identity: lim}
		sl, err := events.NewSharedLimiter(shared, o)
		if err != nil {
			return nil, err
		}
		limiter = sl
		log.Info("rate limits shared through the metadata database", "limits", o.String())
	} else {
		o := &events.MemoryLimiterOptions{Address: lim, Identity: lim}
		ml, err := events.NewMemoryLimiter(o)
		if err != nil {
			return nil, err
		}
		limiter = ml
		log.Info("rate limits kept in this process", "limits", o.String())
	}
	return events.NewRateLimit(limiter, &events.RateLimitOptions{Metrics: metrics, Logger: log})
}

// observe wraps h with the access log, metrics and per-address rate
// limits, starts the metrics listener and the event relay, as configured.
func observe(ctx context.Context, c *config, h http.Handler, outbox driver.Outbox, metrics *events.Metrics, limits *events.RateLimit,
	base string, log *slog.Logger) (http.Handler, error) {
	start := time.Now()
	localLog := filepath.Join(c.data, "access-"+start.UTC().Format("20060102T150405Z")+".log")
	sink, err := openAccessLogSink(ctx, c, localLog, outbox, start)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(localLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		sink.Close()
		return nil, err
	}
	go func() { <-ctx.Done(); _ = f.Close(); sink.Close() }()
	accessLog, err := events.NewAccessLog(&events.AccessLogOptions{Output: f, Writer: sink.Writer, FirstSeq: sink.FirstSeq, PrevHash: sink.PrevHash})
	if err != nil {
		return nil, err
	}
	logAccessSink(log, localLog, sink, c)
	if c.rateLimit > 0 {
		h = limits.Middleware(h)
	}
	if c.metricsAddr != "" {
		ms := &http.Server{Addr: c.metricsAddr, Handler: tlsutil.HSTS(metrics.Handler(), 0), ReadHeaderTimeout: 10 * time.Second, TLSConfig: c.tlsConfig.Clone(),
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() {
			ln, err := net.Listen("tcp", c.metricsAddr)
			if err == nil {
				ln, err = perimeterListener(ln, c.allowedClients, log)
			}
			if err != nil {
				log.Error("metrics listener", "err", err)
				return
			}
			serve := func() error { return ms.Serve(ln) }
			if c.tlsConfig != nil {
				serve = func() error { return ms.ServeTLS(ln, "", "") }
			}
			if err := serve(); err != nil && err != http.ErrServerClosed {
				log.Error("metrics listener", "err", err)
			}
		}()
		go func() { <-ctx.Done(); _ = ms.Close() }()
	}
	if c.eventsURL != "" || c.webhookURLs != "" {
		pub, closePub, err := openPublisher(ctx, c, log)
		if err != nil {
			return nil, err
		}
		relay, err := events.NewRelay(outbox, pub, &events.RelayOptions{Source: base, Logger: log})
		if err != nil {
			closePub()
			return nil, err
		}
		go func() {
			defer closePub()
			if err := relay.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("event relay stopped", "err", err)
			}
		}()
	}
	return accessLog.Middleware(metrics.Middleware(h)), nil
}

// collectGarbage reclaims unreferenced blobs (among them the layers of
// deleted and expired images, once their links are pruned), abandoned
// uploads and orphaned objects every hour.
func collectGarbage(ctx context.Context, store *storage.Store, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := store.GC(ctx, nil)
		if err != nil {
			log.Error("garbage collection failed", "err", err)
			continue
		}
		log.Info("garbage collection", "blobs", st.BlobsDeleted, "bytes", st.BlobBytes+st.OrphanBytes,
			"orphans", st.OrphansDeleted, "uploads", st.UploadsExpired, "links", st.LinksPruned)
	}
}

// adminPassword returns BERTH_ADMIN_PASSWORD, or the password stored in
// DATA/admin-password, generating it on first start.
func adminPassword(dir string, stderr io.Writer) (string, error) {
	if p := os.Getenv("BERTH_ADMIN_PASSWORD"); p != "" {
		return p, nil
	}
	path := filepath.Join(dir, "admin-password")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "registryd: generated the password of user admin in %s\n", path)
	return p, nil
}

// redact drops the query of a URL for logs.
func redact(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return u
}

func storeOptions(s *storage.Store) string {
	o := s.Options()
	return o.String()
}

func subjectOf(id *auth.Identity) string {
	if id.IsAnonymous() {
		return "anonymous"
	}
	return id.Subject
}
