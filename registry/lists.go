package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/manifest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Page sizes for lists: the default when the client names none, and the
// most a client may ask for.
const (
	defaultPage = 100
	maxPage     = 1000
)

// pageParams reads ?n= and ?last=.
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = defaultPage
	if s := q.Get("n"); s != "" {
		n, err = strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, "", newErr(http.StatusBadRequest, codeUnsupported, "n must be a non-negative integer")
		}
		n = min(n, maxPage)
	}
	return n, q.Get("last"), nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func nextLink(path string, n int, last string) string {
	v := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	return "<" + path + "?" + v.Encode() + `>; rel="next"`
}

func (h *Handler) tags(q *request) error {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		return methodNotAllowed()
	}
	name := q.rt.name
	if err := h.authorize(q, name, auth.Pull); err != nil {
		return err
	}
	n, last, err := pageParams(q.r)
	if err != nil {
		return err
	}
	reg, err := h.store.Registry()
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	tags := []string{}
	more := false
	if n > 0 {
		page, m, err := reg.ListTags(ctx, name, last, n)
		if err != nil {
			return classify(err, codeNameUnknown)
		}
		more = m
		for _, t := range page {
			tags = append(tags, t.Name)
		}
	} else if _, err := reg.GetRepository(ctx, name); err != nil {
		return classify(err, codeNameUnknown)
	}
	if more && len(tags) > 0 {
		q.w.Header().Set("Link", nextLink("/v2/"+name+"/tags/list", n, tags[len(tags)-1]))
	}
	writeJSON(q.w, q.r, "application/json", map[string]any{"name": name, "tags": tags})
	return nil
}

// catalog lists the repositories the caller may pull from, and only those:
// private repositories a caller cannot read are not revealed. Anonymous
// callers are asked to authenticate when the handler has an
// Authenticator.
func (h *Handler) catalog(q *request) error {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		return methodNotAllowed()
	}
	// Clients such as oras send credentials only when challenged. An
	// anonymous catalog request is challenged, as the base endpoint is,
	// instead of answered with the (usually empty) anonymous view.
	if q.id.IsAnonymous() && h.opts.Authenticator != nil {
		return h.challenge([]auth.Scope{{Type: auth.TypeRegistry, Name: "catalog", Actions: []string{"*"}}})
	}
	n, last, err := pageParams(q.r)
	if err != nil {
		return err
	}
	reg, err := h.store.Registry()
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	viewer, err := h.catalogViewer(q)
	if err != nil {
		return err
	}
	repos := []string{}
	more := n > 0
	for len(repos) < n && more {
		page, m, err := reg.ListRepositories(ctx, last, n)
		if err != nil {
			return err
		}
		more = m
		if len(page) == 0 {
			break
		}
		want := make([]auth.Scope, len(page))
		for i, r := range page {
			want[i] = auth.Scope{Type: auth.TypeRepository, Name: r.Name, Actions: []string{auth.Pull}}
		}
		var granted []auth.Scope
		if h.opts.Authorizer != nil {
			if granted, err = h.opts.Authorizer.Authorize(ctx, viewer, want); err != nil {
				return err
			}
		}
		for i, r := range page {
			last = r.Name
			if auth.Granted(granted, auth.TypeRepository, r.Name, auth.Pull) {
				repos = append(repos, r.Name)
				if len(repos) == n {
					more = more || i < len(page)-1
					break
				}
			}
		}
	}
	if more && len(repos) > 0 {
		q.w.Header().Set("Link", nextLink("/v2/_catalog", n, repos[len(repos)-1]))
	}
	writeJSON(q.w, q.r, "application/json", map[string]any{"repositories": repos})
	return nil
}

// catalogViewer returns the identity whose pull permissions filter the
// catalog. A bearer token issued for the registry:catalog scope carries no
// repository scopes, so the catalog is filtered by its subject's own
// permissions (Options.Subjects) instead; without a resolver, by the
// token's.
func (h *Handler) catalogViewer(q *request) (*auth.Identity, error) {
	id := q.id
	if h.opts.Subjects == nil || id.Scopes == nil || id.IsAnonymous() {
		return id, nil
	}
	for _, s := range id.Scopes {
		if s.Type == auth.TypeRegistry && s.Name == "catalog" && len(s.Actions) > 0 {
			full, err := h.opts.Subjects.Revalidate(q.r.Context(), id.Subject)
			if errors.Is(err, auth.ErrUnauthenticated) {
				return id, nil
			}
			if err != nil {
				return nil, err
			}
			return full, nil
		}
	}
	return id, nil
}

func (h *Handler) referrers(q *request) error {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		return methodNotAllowed()
	}
	name := q.rt.name
	if err := h.authorize(q, name, auth.Pull); err != nil {
		return err
	}
	d, err := storage.ParseDigest(q.rt.ref)
	if err != nil {
		return classify(err, codeManifestUnknown)
	}
	reg, err := h.store.Registry()
	if err != nil {
		return err
	}
	artifactType := q.r.URL.Query().Get("artifactType")
	descs := []manifest.Descriptor{}
	var after digest.Digest
	for {
		page, more, err := reg.ListReferrers(q.r.Context(), name, d, artifactType, after, maxPage)
		if errors.Is(err, driver.ErrNotFound) {
			break // an unknown repository has no referrers
		}
		if err != nil {
			return err
		}
		for _, m := range page {
			descs = append(descs, manifest.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations})
			after = m.Digest
		}
		if !more || len(page) == 0 {
			break
		}
	}
	if artifactType != "" {
		q.w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(q.w, q.r, manifest.OCIIndex, map[string]any{"schemaVersion": 2, "mediaType": manifest.OCIIndex, "manifests": descs})
	return nil
}
