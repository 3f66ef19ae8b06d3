package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/manifest"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Event types written to the outbox with each state change.
const (
	EventRepositoryCreated = "dev.berth.repository.created"
	EventRepositoryUpdated = "dev.berth.repository.updated"
	EventRepositoryDeleted = "dev.berth.repository.deleted"
	EventManifestPushed    = "dev.berth.manifest.pushed"
	EventManifestDeleted   = "dev.berth.manifest.deleted"
	EventTagCreated        = "dev.berth.tag.created"
	EventTagMoved          = "dev.berth.tag.moved"
	EventTagDeleted        = "dev.berth.tag.deleted"
)

// DefaultMaxManifestSize bounds manifests the store accepts (4 MiB, as
// common registries do).
const DefaultMaxManifestSize = 4 << 20

// ErrUnsupported reports a metadata backend that does not implement
// driver.Registry, so the store can hold blobs but not repositories.
var ErrUnsupported error = &errcode.Error{Code: errcode.Unimplemented, Msg: "storage: the metadata backend does not store repositories"}

// ManifestError reports a manifest that cannot be stored: malformed, of an
// unsupported kind, or referring to content the repository does not hold.
type ManifestError struct {
	// Reason explains the problem.
	Reason string
	// Unsupported is set for well-formed manifests of kinds the registry
	// does not store.
	Unsupported bool
	// Missing lists referenced blobs (or child manifests) that the
	// repository does not hold.
	Missing []digest.Digest
	// MissingManifests is set when Missing lists manifests, not blobs.
	MissingManifests bool
}

func (e *ManifestError) Error() string {
	if len(e.Missing) > 0 {
		return fmt.Sprintf("storage: manifest references %s not in the repository: %v", map[bool]string{false: "blobs", true: "manifests"}[e.MissingManifests], e.Missing)
	}
	return "storage: " + e.Reason
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *ManifestError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

// ImmutableTagError reports an attempt to move a tag of a repository with
// immutable tags.
type ImmutableTagError struct {
	Repository, Tag string
	// Current is the digest the tag points at.
	Current digest.Digest
}

func (e *ImmutableTagError) Error() string {
	return fmt.Sprintf("storage: tag %s:%s is immutable (it points at %s)", e.Repository, e.Tag, e.Current)
}

// ErrorCode implements errcode.Coder: FailedPrecondition.
func (e *ImmutableTagError) ErrorCode() errcode.Code { return errcode.FailedPrecondition }

func (s *Store) reg() (driver.Registry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	r, ok := s.meta.(driver.Registry)
	if !ok {
		return nil, ErrUnsupported
	}
	return r, nil
}

// Registry returns the metadata backend's registry interface, for reads
// the store does not wrap; ErrUnsupported when the backend has none.
func (s *Store) Registry() (driver.Registry, error) { return s.reg() }

func event(typ, subject string, now time.Time, data any) driver.Event {
	b, _ := json.Marshal(data)
	return driver.Event{Type: typ, Subject: subject, Data: b, CreatedAt: now}
}

// EnsureRepository returns the repository, creating it (private, the
// secure default) when it does not exist.
func (s *Store) EnsureRepository(ctx context.Context, name, by string) (*driver.Repository, error) {
	return s.EnsureRepositoryLike(ctx, &driver.Repository{Name: name, Visibility: driver.Private}, by)
}

// EnsureRepositoryLike returns the repository named tmpl.Name, creating it
// with tmpl's settings (visibility, tag immutability, description) when it
// does not exist; an existing repository is returned unchanged. An empty
// visibility means private.
func (s *Store) EnsureRepositoryLike(ctx context.Context, tmpl *driver.Repository, by string) (*driver.Repository, error) {
	r, err := s.reg()
	if err != nil {
		return nil, err
	}
	name := tmpl.Name
	if err := ociname.ValidateName(name); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	repo, err := r.GetRepository(ctx, name)
	if err == nil {
		return repo, nil
	}
	if !errors.Is(err, driver.ErrNotFound) {
		return nil, wrap("get repository", name, err)
	}
	now := s.opts.Now().UTC()
	repo = &driver.Repository{Name: name, Visibility: tmpl.Visibility, ImmutableTags: tmpl.ImmutableTags,
		ImmutableTagExclusions: slices.Clone(tmpl.ImmutableTagExclusions), Description: tmpl.Description, CreatedAt: now, UpdatedAt: now}
	if repo.Visibility == "" {
		repo.Visibility = driver.Private
	}
	err = r.CreateRepository(ctx, repo, event(EventRepositoryCreated, name, now, map[string]any{"repository": name, "visibility": repo.Visibility, "by": by}))
	if errors.Is(err, driver.ErrAlreadyExists) {
		return r.GetRepository(ctx, name)
	}
	if err != nil {
		return nil, wrap("create repository", name, err)
	}
	return repo, nil
}

// LinkBlob makes blob d visible through repo (after a push or a
// cross-repository mount). The repository is created if needed.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, by string) error {
	r, err := s.reg()
	if err != nil {
		return err
	}
	if _, err := s.EnsureRepository(ctx, repo, by); err != nil {
		return err
	}
	return wrap("link blob", repo+"@"+string(d), r.LinkBlob(ctx, repo, d, s.opts.Now().UTC()))
}

// StatRepoBlob returns the descriptor of blob d if repo links it, and an
// error matching ErrNotFound otherwise, whether or not the blob exists
// elsewhere: repositories never reveal each other's blobs.
func (s *Store) StatRepoBlob(ctx context.Context, repo string, d digest.Digest) (Descriptor, error) {
	r, err := s.reg()
	if err != nil {
		return Descriptor{}, err
	}
	if err := ValidateDigest(d); err != nil {
		return Descriptor{}, err
	}
	ok, err := r.BlobLinked(ctx, repo, d)
	if err != nil {
		return Descriptor{}, wrap("stat blob", repo+"@"+string(d), err)
	}
	if !ok {
		return Descriptor{}, fmt.Errorf("storage: blob %s in %s: %w", d, repo, ErrNotFound)
	}
	return s.StatBlob(ctx, d)
}

// ManifestInput is a manifest to store.
type ManifestInput struct {
	Repository string
	// Reference is the tag or digest the manifest is pushed to. A digest
	// must match the content; a tag is pointed at it.
	Reference   string
	ContentType string
	Body        []byte
	// Tags are more tags to point at the manifest once it is stored (the
	// OCI "tag" query parameters of a push by digest). All are validated
	// before anything is written.
	Tags []string
	// By names who pushes, for tag history and events.
	By string
}

// MaxTagsPerPush bounds ManifestInput.Tags.
const MaxTagsPerPush = 100

// PutManifest validates and stores a manifest: every blob it references
// must be linked to the repository and every child manifest stored in it
// (a *ManifestError otherwise). Its bytes are stored durably before its
// record, and its record before the tag: write, then publish. It returns
// the stored record.
func (s *Store) PutManifest(ctx context.Context, in ManifestInput) (*driver.Manifest, error) {
	return s.putManifest(ctx, in, true)
}

// CacheManifest stores a manifest copied from an upstream registry by a
// pull-through cache. It is PutManifest without the reference checks: the
// blobs and child manifests it lists need not be in the repository yet,
// since a cache fetches them when they are first asked for. They are
// recorded all the same, so garbage collection keeps whatever of them is
// stored. Everything else is as for PutManifest: the manifest is parsed
// and validated, a digest reference must match the content, the bytes are
// durable before the record and the record before the tag.
func (s *Store) CacheManifest(ctx context.Context, in ManifestInput) (*driver.Manifest, error) {
	return s.putManifest(ctx, in, false)
}

func (s *Store) putManifest(ctx context.Context, in ManifestInput, checkRefs bool) (*driver.Manifest, error) {
	r, err := s.reg()
	if err != nil {
		return nil, err
	}
	if len(in.Body) > DefaultMaxManifestSize {
		return nil, &TooLargeError{Limit: DefaultMaxManifestSize}
	}
	m, err := manifest.Parse(in.ContentType, in.Body)
	if err != nil {
		var ie *manifest.InvalidError
		if errors.As(err, &ie) {
			return nil, &ManifestError{Reason: ie.Error(), Unsupported: ie.Unsupported}
		}
		return nil, err
	}
	if len(in.Tags) > MaxTagsPerPush {
		return nil, &errcode.Error{Code: errcode.InvalidArgument, Msg: fmt.Sprintf("storage: a push may set at most %d tags", MaxTagsPerPush)}
	}
	for _, t := range in.Tags {
		if err := ociname.ValidateTag(t); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	alg := SHA256
	tag := ""
	if strings.Contains(in.Reference, ":") {
		want, err := ParseDigest(in.Reference)
		if err != nil {
			return nil, err
		}
		alg = want.Algorithm()
		if got := alg.FromBytes(in.Body); got != want {
			return nil, &DigestMismatchError{Want: want, Got: got, Size: int64(len(in.Body))}
		}
	} else if in.Reference != "" {
		if err := ociname.ValidateTag(in.Reference); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		tag = in.Reference
	}
	d := alg.FromBytes(in.Body)
	if _, err := s.EnsureRepository(ctx, in.Repository, in.By); err != nil {
		return nil, err
	}
	// Everything the manifest references must already be in the
	// repository.
	var missing []digest.Digest
	for _, b := range m.Blobs() {
		if !checkRefs {
			break
		}
		ok, err := r.BlobLinked(ctx, in.Repository, b)
		if err != nil {
			return nil, wrap("check blob", string(b), err)
		}
		if !ok && !slices.Contains(missing, b) {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, &ManifestError{Missing: missing}
	}
	rec := &driver.Manifest{
		Repository: in.Repository, Digest: d, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
		Size: int64(len(in.Body)), Annotations: m.Annotations, Blobs: m.Blobs(), Children: m.Children(),
	}
	if m.Config != nil {
		rec.ConfigDigest = m.Config.Digest
		if manifest.IsImageConfig(m.Config.MediaType) {
			if p := s.configPlatform(ctx, m.Config.Digest, m.Config.Size); p != nil {
				rec.Platforms = []driver.Platform{*p}
			}
		}
	}
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
	}
	for _, c := range m.Manifests {
		if checkRefs {
			if _, err := r.GetManifest(ctx, in.Repository, c.Digest); errors.Is(err, driver.ErrNotFound) {
				missing = append(missing, c.Digest)
			} else if err != nil {
				return nil, wrap("check manifest", string(c.Digest), err)
			}
		}
		if c.Platform != nil {
			rec.Platforms = append(rec.Platforms, driver.Platform(*c.Platform))
		}
	}
	if len(missing) > 0 {
		return nil, &ManifestError{Missing: missing, MissingManifests: true}
	}
	// Write: the bytes, durably.
	if _, err := s.PutBlob(ctx, bytes.NewReader(in.Body), Descriptor{Digest: d, Size: int64(len(in.Body))}); err != nil {
		return nil, err
	}
	// Publish: the record, then the tag.
	now := s.opts.Now().UTC()
	rec.PushedAt = now
	subject := in.Repository + "@" + string(d)
	created, err := r.PutManifest(ctx, rec, event(EventManifestPushed, subject, now, map[string]any{
		"repository": in.Repository, "digest": d, "mediaType": m.MediaType, "size": rec.Size, "tag": tag, "by": in.By,
	}))
	if err != nil {
		return nil, wrap("put manifest", subject, err)
	}
	if checkRefs {
		if err := s.keepLinks(ctx, r, rec, created, in.By); err != nil {
			return nil, err
		}
	}
	// The bytes may have been stored already, unreferenced, and collected
	// between PutBlob (which found them) and the record above. The record
	// now protects them from collection: if they are gone, store them again.
	if _, err := s.StatBlob(ctx, d); isNotFound(err) {
		if _, err := s.PutBlob(ctx, bytes.NewReader(in.Body), Descriptor{Digest: d, Size: int64(len(in.Body))}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	tags := in.Tags
	if tag != "" {
		tags = append([]string{tag}, tags...)
	}
	for _, t := range tags {
		if err := s.setTag(ctx, r, in.Repository, t, d, in.By, now); err != nil {
			return nil, err
		}
	}
	s.manifests.add(d, in.Body)
	return rec, nil
}

// keepLinks makes sure the blobs of a manifest just recorded are still
// linked to its repository. Garbage collection prunes links that are older
// than its grace period and that no manifest of the repository references
// (driver.LinkPruner); one may have been pruned between the check before
// the record and the record. The record now protects the links, so a
// missing one is restored, since the repository linked the blob a moment
// ago. If the blob itself has been collected meanwhile, the record just
// made is withdrawn and the push fails as if the blob had been missing.
func (s *Store) keepLinks(ctx context.Context, r driver.Registry, rec *driver.Manifest, created bool, by string) error {
	var gone []digest.Digest
	for _, b := range rec.Blobs {
		ok, err := r.BlobLinked(ctx, rec.Repository, b)
		if err != nil {
			return wrap("check blob", string(b), err)
		}
		if ok {
			continue
		}
		err = r.LinkBlob(ctx, rec.Repository, b, s.opts.Now().UTC())
		if errors.Is(err, driver.ErrNotFound) {
			if !slices.Contains(gone, b) {
				gone = append(gone, b)
			}
			continue
		}
		if err != nil {
			return wrap("link blob", rec.Repository+"@"+string(b), err)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if created {
		if err := s.DeleteManifest(ctx, rec.Repository, rec.Digest, by); err != nil && !isNotFound(err) {
			return err
		}
	}
	return &ManifestError{Missing: gone}
}

// configPlatform reads an image configuration's platform; nil when it
// cannot (the platform is informational).
func (s *Store) configPlatform(ctx context.Context, d digest.Digest, size int64) *driver.Platform {
	if size > 1<<20 {
		return nil
	}
	rd, err := s.OpenBlob(ctx, d, 0, -1)
	if err != nil {
		return nil
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return nil
	}
	c, err := manifest.ParseImageConfig(b)
	if err != nil || c.OS == "" {
		return nil
	}
	return &driver.Platform{Architecture: c.Architecture, OS: c.OS, OSVersion: c.OSVersion, OSFeatures: c.OSFeatures, Variant: c.Variant}
}

func (s *Store) setTag(ctx context.Context, r driver.Registry, repo, tag string, d digest.Digest, by string, now time.Time) error {
	cur, err := r.GetTag(ctx, repo, tag)
	typ := EventTagCreated
	if err == nil {
		if cur.Digest == d {
			return nil
		}
		typ = EventTagMoved
	}
	_, err = r.SetTag(ctx, &driver.Tag{Repository: repo, Name: tag, Digest: d, UpdatedAt: now, UpdatedBy: by},
		event(typ, repo+":"+tag, now, map[string]any{"repository": repo, "tag": tag, "digest": d, "by": by}))
	if errors.Is(err, driver.ErrAlreadyExists) {
		cur, _ := r.GetTag(ctx, repo, tag)
		ie := &ImmutableTagError{Repository: repo, Tag: tag}
		if cur != nil {
			ie.Current = cur.Digest
		}
		return ie
	}
	return wrap("set tag", repo+":"+tag, err)
}

// SetTag points tag at a manifest the repository holds, honouring tag
// immutability (*ImmutableTagError).
func (s *Store) SetTag(ctx context.Context, repo, tag string, d digest.Digest, by string) error {
	r, err := s.reg()
	if err != nil {
		return err
	}
	if err := ociname.ValidateTag(tag); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return s.setTag(ctx, r, repo, tag, d, by, s.opts.Now().UTC())
}

// ResolveManifest returns the record of the manifest reference names in
// repo: a tag or a digest. An error matching ErrNotFound when there is
// none.
func (s *Store) ResolveManifest(ctx context.Context, repo, reference string) (*driver.Manifest, error) {
	r, err := s.reg()
	if err != nil {
		return nil, err
	}
	d := digest.Digest(reference)
	if strings.Contains(reference, ":") {
		if err := ValidateDigest(d); err != nil {
			return nil, err
		}
	} else {
		if err := ociname.ValidateTag(reference); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		t, err := r.GetTag(ctx, repo, reference)
		if err != nil {
			return nil, wrap("resolve tag", repo+":"+reference, err)
		}
		d = t.Digest
	}
	m, err := r.GetManifest(ctx, repo, d)
	if err != nil {
		return nil, wrap("get manifest", repo+"@"+string(d), err)
	}
	return m, nil
}

// StatManifest returns the digest, media type and size of the manifest
// reference names in repo (a tag or a digest): what serving it needs. An
// error matching ErrNotFound when there is none. It reads the metadata
// backend on every call, in a single read when the backend implements
// driver.ManifestHeads: tags are never cached, so a tag moved or deleted
// through any node of a shared backend is seen at once.
func (s *Store) StatManifest(ctx context.Context, repo, reference string) (driver.ManifestHead, error) {
	r, err := s.reg()
	if err != nil {
		return driver.ManifestHead{}, err
	}
	if strings.Contains(reference, ":") {
		if err := ValidateDigest(digest.Digest(reference)); err != nil {
			return driver.ManifestHead{}, err
		}
	} else if err := ociname.ValidateTag(reference); err != nil {
		return driver.ManifestHead{}, fmt.Errorf("storage: %w", err)
	}
	mh, ok := r.(driver.ManifestHeads)
	if !ok {
		m, err := s.ResolveManifest(ctx, repo, reference)
		if err != nil {
			return driver.ManifestHead{}, err
		}
		return driver.ManifestHead{Digest: m.Digest, MediaType: m.MediaType, Size: m.Size}, nil
	}
	h, err := mh.ManifestHead(ctx, repo, reference)
	if err != nil {
		sep := ":"
		if strings.Contains(reference, ":") {
			sep = "@"
		}
		return driver.ManifestHead{}, wrap("resolve manifest", repo+sep+reference, err)
	}
	return h, nil
}

// ReadManifestHead returns the bytes of the manifest StatManifest
// described, as ReadManifest does.
func (s *Store) ReadManifestHead(ctx context.Context, h driver.ManifestHead) ([]byte, error) {
	return s.readManifest(ctx, h.Digest)
}

// ReadManifest returns a manifest's bytes. Manifests are content-addressed
// and immutable, so recently read ones are served from memory.
func (s *Store) ReadManifest(ctx context.Context, m *driver.Manifest) ([]byte, error) {
	return s.readManifest(ctx, m.Digest)
}

func (s *Store) readManifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	if b, ok := s.manifests.get(d); ok {
		return b, nil
	}
	rd, err := s.OpenBlob(ctx, d, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, DefaultMaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	s.manifests.add(d, b)
	return b, nil
}

// MarkPulled records that a manifest was pulled. Records are buffered and
// written in the background (see Options.PullFlushInterval), so pulls
// never wait for a metadata write.
func (s *Store) MarkPulled(repo string, d digest.Digest) {
	s.pulls.mark(repo, d, s.opts.Now().UTC())
}

// DeleteManifest removes a manifest from repo, with the tags pointing at
// it; an error matching ErrNotFound when the repository does not hold it.
// A manifest-deleted event and the extra events are written to the outbox
// in the same transaction as the delete.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, extra ...driver.Event) error {
	r, err := s.reg()
	if err != nil {
		return err
	}
	if err := ValidateDigest(d); err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	subject := repo + "@" + string(d)
	evs := append([]driver.Event{event(EventManifestDeleted, subject, now, map[string]any{"repository": repo, "digest": d, "by": by})}, extra...)
	_, err = r.DeleteManifest(ctx, repo, d, by, now, evs...)
	return wrap("delete manifest", subject, err)
}

// DeleteTag removes a tag (the manifest stays).
func (s *Store) DeleteTag(ctx context.Context, repo, tag, by string) error {
	r, err := s.reg()
	if err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	_, err = r.DeleteTag(ctx, repo, tag, by, now, event(EventTagDeleted, repo+":"+tag, now, map[string]any{"repository": repo, "tag": tag, "by": by}))
	return wrap("delete tag", repo+":"+tag, err)
}

// UnlinkBlob removes blob d from repo. The content stays while other
// repositories link it; garbage collection reclaims it when none does.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	r, err := s.reg()
	if err != nil {
		return err
	}
	if err := ValidateDigest(d); err != nil {
		return err
	}
	return wrap("unlink blob", repo+"@"+string(d), r.UnlinkBlob(ctx, repo, d))
}
