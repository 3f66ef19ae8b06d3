package pullthrough

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Manifest implements registry.Mirror. A manifest pulled by digest is
// served from the store once cached, without asking the upstream. A tag
// is served from the store within its upstream's TagTTL of the last time
// the upstream confirmed it; after that, a HEAD request asks the upstream
// for the tag's digest, and the manifest is fetched again only when it
// changed. When the upstream fails, cannot be reached or throttles
// (5xx, network errors, time-outs, 429), a cached tag is served as it is,
// and the upstream is asked again only after another TTL; its other
// answers (404, 401, 403, …) are passed through.
//
// A fetched manifest is verified against the digest asked for, or the
// upstream's Docker-Content-Digest, and stored with
// storage.Store.CacheManifest before the blobs and child manifests it
// lists, which are fetched when clients ask for them.
func (c *Cache) Manifest(ctx context.Context, repo, reference string) (*driver.Manifest, error) {
	up, remote, ok := c.match(repo)
	if !ok {
		return c.store.ResolveManifest(ctx, repo, reference)
	}
	byDigest := strings.Contains(reference, ":")
	m, err := c.store.ResolveManifest(ctx, repo, reference)
	switch {
	case err == nil && (byDigest || c.fresh(ctx, up, repo, reference)):
		return m, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	cached := m
	return c.manifests.do(ctx, repo+"\x00"+reference, func() (*driver.Manifest, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RequestTimeout)
		defer cancel()
		return c.fetchManifest(fctx, up, repo, remote, reference, cached)
	})
}

// fresh reports whether a cached tag is within its TTL.
func (c *Cache) fresh(ctx context.Context, up *upstream, repo, tag string) bool {
	if up.TagTTL < 0 {
		return false
	}
	c.mu.Lock()
	at, ok := c.validated[repo+":"+tag]
	c.mu.Unlock()
	if !ok {
		// Not confirmed since this process started: the tag's own
		// record says when it was last stored.
		reg, err := c.store.Registry()
		if err != nil {
			return false
		}
		t, err := reg.GetTag(ctx, repo, tag)
		if err != nil {
			return false
		}
		at = t.UpdatedAt
	}
	return c.opts.Now().Sub(at) < up.TagTTL
}

// confirmed records that the upstream confirmed a tag now.
func (c *Cache) confirmed(repo, tag string) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.validated) >= maxValidated {
		// Forget the confirmations old enough to be stale under any TTL
		// in use; if that frees nothing, forget them all (the tags'
		// records still bound how often they are revalidated).
		var maxTTL time.Duration
		for _, up := range c.ups {
			maxTTL = max(maxTTL, up.TagTTL)
		}
		for k, at := range c.validated {
			if now.Sub(at) >= maxTTL {
				delete(c.validated, k)
			}
		}
		if len(c.validated) >= maxValidated {
			clear(c.validated)
		}
	}
	c.validated[repo+":"+tag] = now
}

func (c *Cache) fetchManifest(ctx context.Context, up *upstream, repo, remote, ref string, cached *driver.Manifest) (*driver.Manifest, error) {
	hdr := http.Header{"Accept": {manifestAccept}}
	if cached != nil {
		// A stale tag: ask whether it moved (HEAD requests are cheap, and
		// registries such as Docker Hub do not count them against pull
		// limits).
		resp, err := c.do(ctx, up, remote, http.MethodHead, "/manifests/"+ref, hdr, "MANIFEST_UNKNOWN")
		if err != nil {
			if unavailable(err) {
				return c.serveStale(repo, ref, cached, err), nil
			}
			return nil, err
		}
		resp.Body.Close()
		if digest.Digest(resp.Header.Get("Docker-Content-Digest")) == cached.Digest {
			c.confirmed(repo, ref)
			return cached, nil
		}
	}
	resp, err := c.do(ctx, up, remote, http.MethodGet, "/manifests/"+ref, hdr, "MANIFEST_UNKNOWN")
	if err != nil {
		if cached != nil && unavailable(err) {
			return c.serveStale(repo, ref, cached, err), nil
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > storage.DefaultMaxManifestSize {
		return nil, badUpstream("the upstream manifest is larger than this registry accepts", nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, storage.DefaultMaxManifestSize+1))
	if err != nil {
		if cached != nil {
			return c.serveStale(repo, ref, cached, err), nil
		}
		return nil, upstreamError(err, "", "")
	}
	if len(body) > storage.DefaultMaxManifestSize {
		return nil, badUpstream("the upstream manifest is larger than this registry accepts", nil)
	}
	// Verify: against the digest asked for, else the one the upstream
	// names.
	want := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if strings.Contains(ref, ":") {
		want = digest.Digest(ref)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return nil, badUpstream("the upstream named an invalid manifest digest", err)
		}
		if got := want.Algorithm().FromBytes(body); got != want {
			return nil, badUpstream("the upstream manifest does not match its digest", &storage.DigestMismatchError{Want: want, Got: got, Size: int64(len(body))})
		}
	}
	if err := c.ensureRepo(ctx, up, repo); err != nil {
		return nil, err
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	m, err := c.store.CacheManifest(ctx, storage.ManifestInput{
		Repository: repo, Reference: ref, ContentType: strings.TrimSpace(ct), Body: body, By: By,
	})
	var me *storage.ManifestError
	if errors.As(err, &me) {
		return nil, badUpstream("the upstream manifest cannot be stored: "+me.Reason, err)
	}
	if err != nil {
		return nil, err
	}
	if !strings.Contains(ref, ":") {
		c.confirmed(repo, ref)
	}
	return m, nil
}

// serveStale answers with a cached tag the upstream could not revalidate.
// The tag is not asked for again for another TTL, so that pulls of cached
// images do not each wait for an upstream that is down.
func (c *Cache) serveStale(repo, tag string, cached *driver.Manifest, err error) *driver.Manifest {
	c.opts.Logger.Warn("pullthrough: upstream unavailable, serving the cached tag", "repository", repo, "tag", tag, "err", err)
	c.confirmed(repo, tag)
	return cached
}

// badUpstream is the answer to content the upstream should not have sent.
func badUpstream(msg string, cause error) error {
	return &registry.UpstreamError{StatusCode: http.StatusBadGateway, Code: "UNKNOWN", Message: msg, Err: cause}
}
