package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Defaults; see Upstream and Options.
const (
	DefaultTagTTL          = 5 * time.Minute
	DefaultRequestTimeout  = 30 * time.Second
	DefaultBlobTimeout     = time.Hour
	DefaultBackgroundBytes = 256 << 20
	// maxTransports bounds the authenticated transports kept (one per
	// upstream repository, each holding its token).
	maxTransports = 1024
	// maxValidated bounds the remembered tag revalidations.
	maxValidated = 1 << 16
)

// By is the name the cache records as the author of what it stores (tag
// history, events).
const By = "pullthrough"

// Upstream is one registry mirrored under a repository prefix.
type Upstream struct {
	// Prefix is the repository prefix in this registry that the upstream
	// serves, ending in "/": "hub/" serves "hub/alpine", "hub/x/y", ….
	// Required. When prefixes nest, the longest one that matches wins.
	Prefix string
	// URL is the upstream registry's base URL, "https://host[:port]" (or
	// "http://" for a registry on a trusted network), without a path,
	// query or credentials. Required.
	URL string
	// Remote replaces Prefix in names sent upstream: with Prefix "hub/"
	// and Remote "library/", "hub/alpine" is pulled as "library/alpine".
	// Empty or ending in "/".
	Remote string
	// Username and Password are static credentials for the upstream,
	// sent with HTTP Basic or exchanged for Bearer tokens, as the
	// upstream asks. Empty: anonymous.
	Username, Password string
	// TagTTL is how long a cached tag is served without asking the
	// upstream; after it, the next pull revalidates the tag with a HEAD
	// request. Default DefaultTagTTL; negative revalidates on every pull.
	// Manifests pulled by digest are immutable and never revalidated.
	TagTTL time.Duration
	// Public makes repositories under Prefix pullable without
	// credentials (see Cache.Repositories). Default private.
	Public bool
}

// String describes the upstream without its password.
func (u Upstream) String() string {
	cred := "anonymous"
	if u.Username != "" {
		cred = "user " + u.Username
	}
	vis := "private"
	if u.Public {
		vis = "public"
	}
	return fmt.Sprintf("%s=%s/%s (%s, tag-ttl %s, %s)", u.Prefix, strings.TrimSuffix(u.URL, "/"), u.Remote, cred, u.TagTTL, vis)
}

// Options configures a Cache. A nil *Options is the zero value, whose
// every field is safe.
type Options struct {
	// Client carries every upstream request through its Transport (for
	// example one with an egress allowlist). Its Timeout is not used:
	// see RequestTimeout and BlobTimeout. Default: a clone of
	// http.DefaultTransport.
	Client *http.Client
	// RequestTimeout bounds each manifest request, HEAD and token
	// exchange. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// BlobTimeout bounds one blob fetch, including any part finished in
	// the background. Default DefaultBlobTimeout.
	BlobTimeout time.Duration
	// BackgroundBytes decides what happens when the client that caused a
	// blob fetch goes away mid-way: the fetch finishes in the background,
	// and the blob is cached, when at most this many bytes remain;
	// otherwise (and always when the upstream did not announce the size)
	// it is abandoned and nothing is stored. Default
	// DefaultBackgroundBytes; negative always abandons.
	BackgroundBytes int64
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives upstream failures that were answered from the
	// cache. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.RequestTimeout < 0 || o.BlobTimeout < 0 {
		return errors.New("pullthrough: timeouts in Options must not be negative")
	}
	return nil
}

// String describes the effective configuration, for start-up logs.
func (o *Options) String() string {
	return fmt.Sprintf("request-timeout=%s blob-timeout=%s background-bytes=%d", o.RequestTimeout, o.BlobTimeout, o.BackgroundBytes)
}

// upstream is a validated Upstream.
type upstream struct {
	Upstream
	reg   name.Registry
	https bool
	host  string
	auth  authn.Authenticator
}

// Cache is a pull-through cache: a registry.Mirror serving the
// repositories under each upstream's prefix from the store, and filling
// the store from the upstream on a miss.
type Cache struct {
	store *storage.Store
	ups   []*upstream // longest prefix first
	opts  Options
	base  http.RoundTripper

	transports group[http.RoundTripper]
	manifests  group[*driver.Manifest]

	mu        sync.Mutex
	trs       map[string]http.RoundTripper
	trOrder   []string
	validated map[string]time.Time // repo:tag → last confirmed upstream
	fills     map[string]*fill     // repo@digest → the fetch under way
}

var _ registry.Mirror = (*Cache)(nil)

// New returns a cache storing into store and mirroring upstreams; the
// store's metadata backend must implement driver.Registry.
func New(store *storage.Store, upstreams []Upstream, opts *Options) (*Cache, error) {
	if store == nil {
		return nil, errors.New("pullthrough: New needs a store")
	}
	if _, err := store.Registry(); err != nil {
		return nil, fmt.Errorf("pullthrough: %w", err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.BlobTimeout == 0 {
		o.BlobTimeout = DefaultBlobTimeout
	}
	if o.BackgroundBytes == 0 {
		o.BackgroundBytes = DefaultBackgroundBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Cache{store: store, opts: o, trs: map[string]http.RoundTripper{},
		validated: map[string]time.Time{}, fills: map[string]*fill{}}
	c.base = http.DefaultTransport.(*http.Transport).Clone()
	if o.Client != nil && o.Client.Transport != nil {
		c.base = o.Client.Transport
	}
	for i, u := range upstreams {
		up, err := newUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("pullthrough: upstream %d: %w", i, err)
		}
		for _, other := range c.ups {
			if other.Prefix == up.Prefix {
				return nil, fmt.Errorf("pullthrough: prefix %q is configured twice", up.Prefix)
			}
		}
		c.ups = append(c.ups, up)
	}
	slices.SortStableFunc(c.ups, func(a, b *upstream) int { return len(b.Prefix) - len(a.Prefix) })
	return c, nil
}

func newUpstream(u Upstream) (*upstream, error) {
	if !strings.HasSuffix(u.Prefix, "/") || ociname.ValidateName(strings.TrimSuffix(u.Prefix, "/")) != nil {
		return nil, fmt.Errorf("prefix %q must be a valid repository name followed by \"/\"", u.Prefix)
	}
	if u.Remote != "" && (!strings.HasSuffix(u.Remote, "/") || ociname.ValidateName(strings.TrimSuffix(u.Remote, "/")) != nil) {
		return nil, fmt.Errorf("remote prefix %q must be empty or a valid repository name followed by \"/\"", u.Remote)
	}
	pu, err := url.Parse(u.URL)
	if err != nil {
		// The parser's message quotes the URL, which may hold a password.
		return nil, errors.New("URL is not a valid URL")
	}
	switch {
	case pu.User != nil:
		return nil, errors.New("URL must not carry credentials: set Username and Password")
	case pu.Scheme != "https" && pu.Scheme != "http":
		return nil, fmt.Errorf("URL %q must be http(s)://host[:port]", u.URL)
	case pu.Host == "" || (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.Fragment != "":
		return nil, fmt.Errorf("URL %q must be http(s)://host[:port], without a path or query", u.URL)
	}
	if (u.Username == "") != (u.Password == "") {
		return nil, errors.New("Username and Password go together")
	}
	var nopts []name.Option
	if pu.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(pu.Host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", u.URL, err)
	}
	if u.TagTTL == 0 {
		u.TagTTL = DefaultTagTTL
	}
	u.URL = pu.Scheme + "://" + pu.Host
	up := &upstream{Upstream: u, reg: reg, https: pu.Scheme == "https", host: pu.Host, auth: authn.Anonymous}
	if u.Username != "" {
		up.auth = &authn.Basic{Username: u.Username, Password: u.Password}
	}
	return up, nil
}

// Options returns the effective options (with defaults applied).
func (c *Cache) Options() Options { return c.opts }

// Upstreams returns the configured upstreams, with defaults applied and
// passwords removed.
func (c *Cache) Upstreams() []Upstream {
	out := make([]Upstream, len(c.ups))
	for i, up := range c.ups {
		out[i] = up.Upstream
		if out[i].Password != "" {
			out[i].Password = "REDACTED"
		}
	}
	return out
}

// match returns the upstream serving repo and repo's name there.
func (c *Cache) match(repo string) (*upstream, string, bool) {
	for _, up := range c.ups {
		if rest, ok := strings.CutPrefix(repo, up.Prefix); ok && rest != "" {
			return up, up.Remote + rest, true
		}
	}
	return nil, "", false
}

// Mirrors implements registry.Mirror: repo is under a configured prefix.
func (c *Cache) Mirrors(repo string) bool {
	_, _, ok := c.match(repo)
	return ok
}

// ensureRepo creates the cached repository on first pull, with the
// upstream's visibility.
func (c *Cache) ensureRepo(ctx context.Context, up *upstream, repo string) error {
	vis := driver.Private
	if up.Public {
		vis = driver.Public
	}
	_, err := c.store.EnsureRepositoryLike(ctx, &driver.Repository{
		Name: repo, Visibility: vis, Description: "pull-through cache of " + up.URL + "/" + up.Remote,
	}, By)
	return err
}

// RepositoryLookup returns a repository's record, or an error matching
// driver.ErrNotFound. policy.RepositoryLookup and driver.Repositories
// have this shape.
type RepositoryLookup interface {
	GetRepository(ctx context.Context, name string) (*driver.Repository, error)
}

// Repositories wraps next so that a repository under a public upstream's
// prefix that is not cached yet reads as an existing public repository.
// Give it to the authorizer (policy.New(cache.Repositories(reg))) so that
// anonymous clients may make the first pull of a public upstream's
// repositories; without it, they may pull only what is cached already.
func (c *Cache) Repositories(next RepositoryLookup) RepositoryLookup {
	return lookup{c: c, next: next}
}

type lookup struct {
	c    *Cache
	next RepositoryLookup
}

func (l lookup) GetRepository(ctx context.Context, name string) (*driver.Repository, error) {
	r, err := l.next.GetRepository(ctx, name)
	if errors.Is(err, driver.ErrNotFound) {
		if up, _, ok := l.c.match(name); ok && up.Public && ociname.ValidateName(name) == nil {
			return &driver.Repository{Name: name, Visibility: driver.Public}, nil
		}
	}
	return r, err
}

// group runs one call per key at a time; callers of a key in flight wait
// for its result. The call runs on its own goroutine, so a caller that
// leaves does not cancel it for the others.
type group[T any] struct {
	mu sync.Mutex
	m  map[string]*call[T]
}

type call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func (g *group[T]) do(ctx context.Context, key string, fn func() (T, error)) (T, error) {
	g.mu.Lock()
	c, ok := g.m[key]
	if !ok {
		if g.m == nil {
			g.m = map[string]*call[T]{}
		}
		c = &call[T]{done: make(chan struct{})}
		g.m[key] = c
		go func() {
			defer close(c.done)
			c.val, c.err = fn()
			g.mu.Lock()
			delete(g.m, key)
			g.mu.Unlock()
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
