package memmeta

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

var (
	_ driver.Registry      = (*Metadata)(nil)
	_ driver.ManifestHeads = (*Metadata)(nil)
	_ driver.LinkPruner    = (*Metadata)(nil)
)

// registryState is the part of Metadata behind driver.Registry. It is
// guarded by Metadata.mu.
type registryState struct {
	repos     map[string]*driver.Repository
	manifests map[string]map[digest.Digest]*driver.Manifest // by repository
	tags      map[string]map[string]*driver.Tag             // by repository
	history   []*driver.TagChange
	links     map[string]map[digest.Digest]time.Time // by repository
	policies  map[string]*driver.Policy
	scans     map[scanKey]*driver.ScanResult
	tokens    map[string]*driver.Token
	outbox    []*outboxEntry
	rates     map[string]int64 // rate-limit key → theoretical arrival time (ns)
	seq       int64            // last TagChange.Seq
	eventID   int64            // last Event.ID
	scanJobs  []*driver.ScanJob
	scanJobID int64 // last ScanJob.ID
}

type scanKey struct {
	d             digest.Digest
	scanner, kind string
}

type outboxEntry struct {
	ev           driver.Event
	claimedUntil time.Time
}

func newRegistryState() registryState {
	return registryState{
		repos:     map[string]*driver.Repository{},
		manifests: map[string]map[digest.Digest]*driver.Manifest{},
		tags:      map[string]map[string]*driver.Tag{},
		links:     map[string]map[digest.Digest]time.Time{},
		policies:  map[string]*driver.Policy{},
		scans:     map[scanKey]*driver.ScanResult{},
		tokens:    map[string]*driver.Token{},
	}
}

func (s *registryState) appendEvents(events []driver.Event) {
	for _, e := range events {
		s.eventID++
		e.ID = s.eventID
		e.Data = slices.Clone(e.Data)
		s.outbox = append(s.outbox, &outboxEntry{ev: e})
	}
}

func invalid(err error) error { return fmt.Errorf("memmeta: %w", err) }

// begin checks ctx and takes the lock; the caller defers m.mu.Unlock.
func (m *Metadata) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	return nil
}

// paginate returns the first limit items of sorted, and whether more
// follow. It never returns nil.
func paginate[T any](sorted []T, limit int) ([]T, bool) {
	if sorted == nil {
		sorted = []T{}
	}
	if len(sorted) > limit {
		return sorted[:limit:limit], true
	}
	return sorted, false
}

func copyRepository(r *driver.Repository) *driver.Repository {
	c := *r
	c.ImmutableTagExclusions = slices.Clone(r.ImmutableTagExclusions)
	return &c
}

func copyManifest(mf *driver.Manifest) *driver.Manifest {
	c := *mf
	c.Annotations = maps.Clone(mf.Annotations)
	c.Platforms = make([]driver.Platform, len(mf.Platforms))
	for i, p := range mf.Platforms {
		p.OSFeatures = slices.Clone(p.OSFeatures)
		c.Platforms[i] = p
	}
	c.Blobs = slices.Clone(mf.Blobs)
	c.Children = slices.Clone(mf.Children)
	return &c
}

func copyToken(t *driver.Token) *driver.Token {
	c := *t
	c.SecretHash = slices.Clone(t.SecretHash)
	c.Scopes = slices.Clone(t.Scopes)
	return &c
}

func (m *Metadata) repoLocked(name string) (*driver.Repository, error) {
	r, ok := m.repos[name]
	if !ok {
		return nil, notFound("repository " + name)
	}
	return r, nil
}

// CreateRepository implements driver.Repositories.
func (m *Metadata) CreateRepository(ctx context.Context, r *driver.Repository, events ...driver.Event) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.repos[r.Name]; ok {
		return fmt.Errorf("memmeta: repository %s: %w", r.Name, driver.ErrAlreadyExists)
	}
	m.repos[r.Name] = copyRepository(r)
	m.appendEvents(events)
	return nil
}

// GetRepository implements driver.Repositories.
func (m *Metadata) GetRepository(ctx context.Context, name string) (*driver.Repository, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	r, err := m.repoLocked(name)
	if err != nil {
		return nil, err
	}
	return copyRepository(r), nil
}

// UpdateRepository implements driver.Repositories.
func (m *Metadata) UpdateRepository(ctx context.Context, r *driver.Repository, events ...driver.Event) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	old, err := m.repoLocked(r.Name)
	if err != nil {
		return err
	}
	c := copyRepository(r)
	c.CreatedAt = old.CreatedAt
	m.repos[r.Name] = c
	m.appendEvents(events)
	return nil
}

// DeleteRepository implements driver.Repositories.
func (m *Metadata) DeleteRepository(ctx context.Context, name string, events ...driver.Event) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(name); err != nil {
		return err
	}
	delete(m.repos, name)
	delete(m.manifests, name)
	delete(m.tags, name)
	delete(m.links, name)
	delete(m.policies, name)
	m.history = slices.DeleteFunc(m.history, func(c *driver.TagChange) bool { return c.Repository == name })
	m.appendEvents(events)
	return nil
}

// ListRepositories implements driver.Repositories.
func (m *Metadata) ListRepositories(ctx context.Context, after string, limit int) ([]*driver.Repository, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	var names []string
	for n := range m.repos {
		if n > after {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names, more := paginate(names, limit)
	out := make([]*driver.Repository, len(names))
	for i, n := range names {
		out[i] = copyRepository(m.repos[n])
	}
	return out, more, nil
}

// PutManifest implements driver.Manifests.
func (m *Metadata) PutManifest(ctx context.Context, mf *driver.Manifest, events ...driver.Event) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(mf.Repository); err != nil {
		return false, err
	}
	ms := m.manifests[mf.Repository]
	if ms == nil {
		ms = map[digest.Digest]*driver.Manifest{}
		m.manifests[mf.Repository] = ms
	}
	created := false
	if _, ok := ms[mf.Digest]; !ok {
		ms[mf.Digest] = copyManifest(mf)
		created = true
	}
	m.appendEvents(events)
	return created, nil
}

func (m *Metadata) manifestLocked(repo string, d digest.Digest) (*driver.Manifest, error) {
	mf, ok := m.manifests[repo][d]
	if !ok {
		return nil, notFound("manifest " + repo + "@" + string(d))
	}
	return mf, nil
}

// GetManifest implements driver.Manifests.
func (m *Metadata) GetManifest(ctx context.Context, repo string, d digest.Digest) (*driver.Manifest, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	mf, err := m.manifestLocked(repo, d)
	if err != nil {
		return nil, err
	}
	return copyManifest(mf), nil
}

// ManifestHead implements driver.ManifestHeads.
func (m *Metadata) ManifestHead(ctx context.Context, repo, reference string) (driver.ManifestHead, error) {
	if err := m.begin(ctx); err != nil {
		return driver.ManifestHead{}, err
	}
	defer m.mu.Unlock()
	d := digest.Digest(reference)
	if !strings.Contains(reference, ":") {
		t, ok := m.tags[repo][reference]
		if !ok {
			return driver.ManifestHead{}, notFound("tag " + repo + ":" + reference)
		}
		d = t.Digest
	}
	mf, err := m.manifestLocked(repo, d)
	if err != nil {
		return driver.ManifestHead{}, err
	}
	return driver.ManifestHead{Digest: mf.Digest, MediaType: mf.MediaType, Size: mf.Size}, nil
}

func (m *Metadata) recordLocked(repo, tag string, old, new digest.Digest, by string, at time.Time) {
	m.seq++
	m.history = append(m.history, &driver.TagChange{Seq: m.seq, Repository: repo, Tag: tag, Old: old, New: new, At: at, By: by})
}

// DeleteManifest implements driver.Manifests.
func (m *Metadata) DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, at time.Time, events ...driver.Event) (*driver.Manifest, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	mf, err := m.manifestLocked(repo, d)
	if err != nil {
		return nil, err
	}
	delete(m.manifests[repo], d)
	var names []string
	for name, t := range m.tags[repo] {
		if t.Digest == d {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		delete(m.tags[repo], name)
		m.recordLocked(repo, name, d, "", by, at)
	}
	m.appendEvents(events)
	return mf, nil
}

// ListManifests implements driver.Manifests.
func (m *Metadata) ListManifests(ctx context.Context, repo string, after digest.Digest, limit int) ([]*driver.Manifest, bool, error) {
	return m.listManifests(ctx, repo, after, limit, func(*driver.Manifest) bool { return true })
}

func (m *Metadata) listManifests(ctx context.Context, repo string, after digest.Digest, limit int, keep func(*driver.Manifest) bool) ([]*driver.Manifest, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return nil, false, err
	}
	var out []*driver.Manifest
	for d, mf := range m.manifests[repo] {
		if d > after && keep(mf) {
			out = append(out, mf)
		}
	}
	slices.SortFunc(out, func(a, b *driver.Manifest) int { return cmp.Compare(a.Digest, b.Digest) })
	out, more := paginate(out, limit)
	for i, mf := range out {
		out[i] = copyManifest(mf)
	}
	return out, more, nil
}

// MarkPulled implements driver.Manifests.
func (m *Metadata) MarkPulled(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mf, err := m.manifestLocked(repo, d)
	if err != nil {
		return err
	}
	if at.After(mf.LastPulledAt) {
		mf.LastPulledAt = at
	}
	return nil
}

// SetTag implements driver.Tags.
func (m *Metadata) SetTag(ctx context.Context, t *driver.Tag, events ...driver.Event) (digest.Digest, error) {
	if err := m.begin(ctx); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	r, err := m.repoLocked(t.Repository)
	if err != nil {
		return "", err
	}
	if _, err := m.manifestLocked(t.Repository, t.Digest); err != nil {
		return "", err
	}
	tags := m.tags[t.Repository]
	if tags == nil {
		tags = map[string]*driver.Tag{}
		m.tags[t.Repository] = tags
	}
	var old digest.Digest
	if cur, ok := tags[t.Name]; ok {
		old = cur.Digest
		if old == t.Digest {
			m.appendEvents(events)
			return old, nil
		}
		if r.TagImmutable(t.Name) {
			return "", fmt.Errorf("memmeta: tag %s:%s is immutable: %w", t.Repository, t.Name, driver.ErrAlreadyExists)
		}
	}
	c := *t
	tags[t.Name] = &c
	m.recordLocked(t.Repository, t.Name, old, t.Digest, t.UpdatedBy, t.UpdatedAt)
	m.appendEvents(events)
	return old, nil
}

// GetTag implements driver.Tags.
func (m *Metadata) GetTag(ctx context.Context, repo, name string) (*driver.Tag, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	t, ok := m.tags[repo][name]
	if !ok {
		return nil, notFound("tag " + repo + ":" + name)
	}
	c := *t
	return &c, nil
}

// DeleteTag implements driver.Tags.
func (m *Metadata) DeleteTag(ctx context.Context, repo, name, by string, at time.Time, events ...driver.Event) (*driver.Tag, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	t, ok := m.tags[repo][name]
	if !ok {
		return nil, notFound("tag " + repo + ":" + name)
	}
	delete(m.tags[repo], name)
	m.recordLocked(repo, name, t.Digest, "", by, at)
	m.appendEvents(events)
	return t, nil
}

// ListTags implements driver.Tags.
func (m *Metadata) ListTags(ctx context.Context, repo, after string, limit int) ([]*driver.Tag, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return nil, false, err
	}
	var out []*driver.Tag
	for name, t := range m.tags[repo] {
		if name > after {
			c := *t
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *driver.Tag) int { return strings.Compare(a.Name, b.Name) })
	out, more := paginate(out, limit)
	return out, more, nil
}

// TagsOf implements driver.Tags.
func (m *Metadata) TagsOf(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := []string{}
	for name, t := range m.tags[repo] {
		if t.Digest == d {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ListTagHistory implements driver.TagHistory.
func (m *Metadata) ListTagHistory(ctx context.Context, repo, tag string, after int64, limit int) ([]*driver.TagChange, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return nil, false, err
	}
	var out []*driver.TagChange
	for _, c := range m.history { // in Seq order
		if c.Repository == repo && c.Tag == tag && c.Seq > after {
			cc := *c
			out = append(out, &cc)
		}
	}
	out, more := paginate(out, limit)
	return out, more, nil
}

// ListReferrers implements driver.Referrers.
func (m *Metadata) ListReferrers(ctx context.Context, repo string, subject digest.Digest, artifactType string, after digest.Digest, limit int) ([]*driver.Manifest, bool, error) {
	return m.listManifests(ctx, repo, after, limit, func(mf *driver.Manifest) bool {
		return mf.Subject == subject && subject != "" && (artifactType == "" || mf.ArtifactType == artifactType)
	})
}

// LinkBlob implements driver.Links.
func (m *Metadata) LinkBlob(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return err
	}
	if _, ok := m.blobs[d]; !ok {
		return notFound("blob " + string(d))
	}
	links := m.links[repo]
	if links == nil {
		links = map[digest.Digest]time.Time{}
		m.links[repo] = links
	}
	if old, ok := links[d]; !ok || at.After(old) {
		links[d] = at
	}
	return nil
}

// PruneLinks implements driver.LinkPruner.
func (m *Metadata) PruneLinks(ctx context.Context, repo string, linkedBefore time.Time) (int64, error) {
	if err := m.begin(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return 0, err
	}
	referenced := map[digest.Digest]struct{}{}
	for d, mf := range m.manifests[repo] {
		referenced[d] = struct{}{}
		for _, b := range mf.Blobs {
			referenced[b] = struct{}{}
		}
	}
	var n int64
	for d, at := range m.links[repo] {
		if _, ok := referenced[d]; ok || !at.Before(linkedBefore) {
			continue
		}
		delete(m.links[repo], d)
		n++
	}
	return n, nil
}

// BlobLinked implements driver.Links.
func (m *Metadata) BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	_, ok := m.links[repo][d]
	return ok, nil
}

// UnlinkBlob implements driver.Links.
func (m *Metadata) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.links[repo][d]; !ok {
		return notFound("link of blob " + string(d) + " to " + repo)
	}
	delete(m.links[repo], d)
	return nil
}

// ListLinks implements driver.Links.
func (m *Metadata) ListLinks(ctx context.Context, repo string, after digest.Digest, limit int) ([]digest.Digest, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(repo); err != nil {
		return nil, false, err
	}
	var out []digest.Digest
	for d := range m.links[repo] {
		if d > after {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	out, more := paginate(out, limit)
	return out, more, nil
}

// CountBlobReferences implements driver.References.
func (m *Metadata) CountBlobReferences(ctx context.Context, d digest.Digest) (links, manifests int64, err error) {
	if err := m.begin(ctx); err != nil {
		return 0, 0, err
	}
	defer m.mu.Unlock()
	for _, l := range m.links {
		if _, ok := l[d]; ok {
			links++
		}
	}
	for _, ms := range m.manifests {
		for _, mf := range ms {
			if slices.Contains(mf.Blobs, d) {
				manifests++
			}
		}
	}
	return links, manifests, nil
}

// ListParents implements driver.References.
func (m *Metadata) ListParents(ctx context.Context, repo string, child digest.Digest, after digest.Digest, limit int) ([]digest.Digest, bool, error) {
	page, more, err := m.listManifests(ctx, repo, after, limit, func(mf *driver.Manifest) bool {
		return slices.Contains(mf.Children, child)
	})
	if err != nil {
		return nil, false, err
	}
	out := make([]digest.Digest, len(page))
	for i, mf := range page {
		out[i] = mf.Digest
	}
	return out, more, nil
}

// DeleteUnreferencedBlob implements driver.References.
func (m *Metadata) DeleteUnreferencedBlob(ctx context.Context, d digest.Digest, createdBefore time.Time) (*driver.Blob, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, notFound("blob " + string(d))
	}
	if !b.CreatedAt.Before(createdBefore) {
		return nil, fmt.Errorf("memmeta: blob %s is within the grace period: %w", d, driver.ErrConflict)
	}
	for repo, l := range m.links {
		if _, ok := l[d]; ok {
			return nil, fmt.Errorf("memmeta: blob %s is linked to %s: %w", d, repo, driver.ErrConflict)
		}
	}
	for repo, ms := range m.manifests {
		if _, ok := ms[d]; ok {
			return nil, fmt.Errorf("memmeta: blob %s is the content of manifest %s@%s: %w", d, repo, d, driver.ErrConflict)
		}
		for _, mf := range ms {
			if slices.Contains(mf.Blobs, d) {
				return nil, fmt.Errorf("memmeta: blob %s is referenced by %s@%s: %w", d, repo, mf.Digest, driver.ErrConflict)
			}
		}
	}
	delete(m.blobs, d)
	return b, nil
}

// PutPolicy implements driver.Policies.
func (m *Metadata) PutPolicy(ctx context.Context, p *driver.Policy, events ...driver.Event) error {
	if err := driver.CheckJSON("lifecycle policy of "+p.Repository, p.Document); err != nil {
		return invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, err := m.repoLocked(p.Repository); err != nil {
		return err
	}
	c := *p
	c.Document = slices.Clone(p.Document)
	m.policies[p.Repository] = &c
	m.appendEvents(events)
	return nil
}

// GetPolicy implements driver.Policies.
func (m *Metadata) GetPolicy(ctx context.Context, repo string) (*driver.Policy, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	p, ok := m.policies[repo]
	if !ok {
		return nil, notFound("lifecycle policy of " + repo)
	}
	c := *p
	c.Document = slices.Clone(p.Document)
	return &c, nil
}

// DeletePolicy implements driver.Policies.
func (m *Metadata) DeletePolicy(ctx context.Context, repo string, events ...driver.Event) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.policies[repo]; !ok {
		return notFound("lifecycle policy of " + repo)
	}
	delete(m.policies, repo)
	m.appendEvents(events)
	return nil
}

// ListPolicies implements driver.Policies.
func (m *Metadata) ListPolicies(ctx context.Context, after string, limit int) ([]*driver.Policy, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	var out []*driver.Policy
	for name, p := range m.policies {
		if name > after {
			c := *p
			c.Document = slices.Clone(p.Document)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *driver.Policy) int { return strings.Compare(a.Repository, b.Repository) })
	out, more := paginate(out, limit)
	return out, more, nil
}

// PutScanResult implements driver.ScanResults.
func (m *Metadata) PutScanResult(ctx context.Context, r *driver.ScanResult, events ...driver.Event) error {
	if err := driver.CheckScanKind(r.Kind); err != nil {
		return invalid(err)
	}
	if err := driver.CheckJSON("scan "+r.Kind+" of "+string(r.Digest), r.Data); err != nil {
		return invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	c := *r
	c.Data = slices.Clone(r.Data)
	m.scans[scanKey{r.Digest, r.Scanner, r.Kind}] = &c
	m.appendEvents(events)
	return nil
}

// GetScanResult implements driver.ScanResults.
func (m *Metadata) GetScanResult(ctx context.Context, d digest.Digest, scanner, kind string) (*driver.ScanResult, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	r, ok := m.scans[scanKey{d, scanner, kind}]
	if !ok {
		return nil, notFound("scan " + kind + " of " + string(d) + " by " + scanner)
	}
	c := *r
	c.Data = slices.Clone(r.Data)
	return &c, nil
}

// ListScanResults implements driver.ScanResults.
func (m *Metadata) ListScanResults(ctx context.Context, d digest.Digest) ([]*driver.ScanResult, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := []*driver.ScanResult{}
	for k, r := range m.scans {
		if k.d == d {
			c := *r
			c.Data = slices.Clone(r.Data)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *driver.ScanResult) int {
		return cmp.Or(strings.Compare(a.Scanner, b.Scanner), strings.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

// DeleteScanResults implements driver.ScanResults.
func (m *Metadata) DeleteScanResults(ctx context.Context, d digest.Digest) (int64, error) {
	if err := m.begin(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	var n int64
	for k := range m.scans {
		if k.d == d {
			delete(m.scans, k)
			n++
		}
	}
	return n, nil
}

// CreateToken implements driver.Tokens.
func (m *Metadata) CreateToken(ctx context.Context, t *driver.Token, events ...driver.Event) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.tokens[t.ID]; ok {
		return fmt.Errorf("memmeta: token %s: %w", t.ID, driver.ErrAlreadyExists)
	}
	for _, o := range m.tokens {
		if o.Username == t.Username {
			return fmt.Errorf("memmeta: token username %s: %w", t.Username, driver.ErrAlreadyExists)
		}
	}
	m.tokens[t.ID] = copyToken(t)
	m.appendEvents(events)
	return nil
}

// GetToken implements driver.Tokens.
func (m *Metadata) GetToken(ctx context.Context, id string) (*driver.Token, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return nil, notFound("token " + id)
	}
	return copyToken(t), nil
}

// GetTokenByUsername implements driver.Tokens.
func (m *Metadata) GetTokenByUsername(ctx context.Context, username string) (*driver.Token, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	for _, t := range m.tokens {
		if t.Username == username {
			return copyToken(t), nil
		}
	}
	return nil, notFound("token of user " + username)
}

// RevokeToken implements driver.Tokens.
func (m *Metadata) RevokeToken(ctx context.Context, id string, at time.Time, events ...driver.Event) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return notFound("token " + id)
	}
	if t.RevokedAt.IsZero() {
		t.RevokedAt = at
	}
	m.appendEvents(events)
	return nil
}

// ListTokens implements driver.Tokens.
func (m *Metadata) ListTokens(ctx context.Context, after string, limit int) ([]*driver.Token, bool, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, false, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	var out []*driver.Token
	for id, t := range m.tokens {
		if id > after {
			out = append(out, copyToken(t))
		}
	}
	slices.SortFunc(out, func(a, b *driver.Token) int { return strings.Compare(a.ID, b.ID) })
	out, more := paginate(out, limit)
	return out, more, nil
}

// AppendEvents implements driver.Outbox.
func (m *Metadata) AppendEvents(ctx context.Context, events ...driver.Event) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.appendEvents(events)
	return nil
}

// ClaimEvents implements driver.Outbox.
func (m *Metadata) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*driver.Event, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := []*driver.Event{}
	for _, e := range m.outbox { // in ID order
		if len(out) == limit {
			break
		}
		if e.claimedUntil.After(now) {
			continue
		}
		e.claimedUntil = now.Add(lease)
		c := e.ev
		c.Data = slices.Clone(e.ev.Data)
		out = append(out, &c)
	}
	return out, nil
}

// AckEvents implements driver.Outbox.
func (m *Metadata) AckEvents(ctx context.Context, ids ...int64) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.outbox = slices.DeleteFunc(m.outbox, func(e *outboxEntry) bool { return slices.Contains(ids, e.ev.ID) })
	return nil
}
