// Package imagesource opens the images stored in a *storage.Store as
// go-containerregistry v1.Image and v1.ImageIndex values, without HTTP,
// so that a scan.Pipeline running inside a registry reads layers straight
// from the blob store (decrypting them on the fly) rather than pulling
// them from itself.
//
//	src := imagesource.New(store)
//	p, err := scan.NewPipeline(scanner, src, reg, reg, nil)
//
// [Source] implements scan.ImageSource (structurally: this package does
// not import scan).
//
// # Errors
//
// A manifest that the repository does not hold, and a blob the repository
// does not link, are errors matching driver.ErrNotFound (storage.ErrNotFound):
// the Pipeline then drops the job instead of retrying it. Manifest bytes
// are checked against their digest; layers are served as stored (the
// store verified them when they were pushed).
//
// # Security
//
// An image is read only through the repository the job names: every
// config, layer and child manifest must be linked to, or stored in, that
// repository, exactly as a pull through the registry API would require.
// Manifests are read up to storage.DefaultMaxManifestSize and configs up
// to MaxConfigSize.
//
// # Concurrency
//
// A Source is safe for concurrent use. The images it returns read blobs
// with the context passed to Open, which must stay live while they are
// used (the Pipeline's scan context does).
package imagesource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/storage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// MaxConfigSize bounds the image configurations Source reads (8 MiB).
const MaxConfigSize = 8 << 20

// Source opens images stored in a *storage.Store.
type Source struct {
	store *storage.Store
}

// New returns a Source over store, whose metadata backend must implement
// driver.Registry.
func New(store *storage.Store) (*Source, error) {
	if store == nil {
		return nil, errors.New("imagesource: nil store")
	}
	if _, err := store.Registry(); err != nil {
		return nil, fmt.Errorf("imagesource: %w", err)
	}
	return &Source{store: store}, nil
}

// Open returns the manifest d of repo as an image, or as an index (exactly
// one of img and idx is non-nil). It implements scan.ImageSource.
func (s *Source) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	raw, mt, err := s.manifest(ctx, repo, d)
	if err != nil {
		return nil, nil, err
	}
	if mt.IsIndex() {
		return nil, &index{src: s, ctx: ctx, repo: repo, raw: raw, mt: mt}, nil
	}
	if !mt.IsImage() {
		return nil, nil, fmt.Errorf("imagesource: %s@%s has media type %q, neither an image nor an index", repo, d, mt)
	}
	img, err := s.image(ctx, repo, raw, mt)
	return img, nil, err
}

// manifest reads and verifies the bytes of manifest d in repo.
func (s *Source) manifest(ctx context.Context, repo string, d v1.Hash) ([]byte, types.MediaType, error) {
	m, err := s.store.ResolveManifest(ctx, repo, d.String())
	if err != nil {
		return nil, "", fmt.Errorf("imagesource: %s@%s: %w", repo, d, err)
	}
	raw, err := s.store.ReadManifest(ctx, m)
	if err != nil {
		return nil, "", fmt.Errorf("imagesource: %s@%s: %w", repo, d, err)
	}
	if got := digest.Digest(d.String()).Algorithm().FromBytes(raw); got.String() != d.String() {
		return nil, "", fmt.Errorf("imagesource: %s@%s: stored manifest has digest %s", repo, d, got)
	}
	return raw, types.MediaType(m.MediaType), nil
}

func (s *Source) image(ctx context.Context, repo string, raw []byte, mt types.MediaType) (v1.Image, error) {
	core := &imageCore{src: s, ctx: ctx, repo: repo, raw: raw, mt: mt}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, fmt.Errorf("imagesource: %w", err)
	}
	return img, nil
}

// open opens blob h of repo if repo links it.
func (s *Source) open(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, int64, error) {
	d := digest.Digest(h.String())
	if _, err := s.store.StatRepoBlob(ctx, repo, d); err != nil {
		return nil, 0, fmt.Errorf("imagesource: %w", err)
	}
	rd, err := s.store.OpenBlob(ctx, d, 0, -1)
	if err != nil {
		return nil, 0, fmt.Errorf("imagesource: %w", err)
	}
	return rd, rd.Size(), nil
}

// imageCore is partial.CompressedImageCore over the store.
type imageCore struct {
	src  *Source
	ctx  context.Context
	repo string
	raw  []byte
	mt   types.MediaType
}

func (c *imageCore) RawManifest() ([]byte, error)        { return c.raw, nil }
func (c *imageCore) MediaType() (types.MediaType, error) { return c.mt, nil }

func (c *imageCore) RawConfigFile() ([]byte, error) {
	m, err := v1.ParseManifest(bytes.NewReader(c.raw))
	if err != nil {
		return nil, fmt.Errorf("imagesource: %w", err)
	}
	rd, _, err := c.src.open(c.ctx, c.repo, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("imagesource: config %s: %w", m.Config.Digest, err)
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("imagesource: config %s is larger than %d bytes", m.Config.Digest, MaxConfigSize)
	}
	return b, nil
}

func (c *imageCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := v1.ParseManifest(bytes.NewReader(c.raw))
	if err != nil {
		return nil, fmt.Errorf("imagesource: %w", err)
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &layer{core: c, desc: l}, nil
		}
	}
	if m.Config.Digest == h {
		return &layer{core: c, desc: m.Config}, nil
	}
	return nil, fmt.Errorf("imagesource: the image has no layer %s", h)
}

// layer is partial.CompressedLayer over one stored blob.
type layer struct {
	core *imageCore
	desc v1.Descriptor
}

func (l *layer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *layer) Compressed() (io.ReadCloser, error) {
	rd, size, err := l.core.src.open(l.core.ctx, l.core.repo, l.desc.Digest)
	if err != nil {
		return nil, err
	}
	if size != l.desc.Size {
		rd.Close()
		return nil, fmt.Errorf("imagesource: layer %s is %d bytes, the manifest says %d", l.desc.Digest, size, l.desc.Size)
	}
	return rd, nil
}

// index is a v1.ImageIndex over the store.
type index struct {
	src  *Source
	ctx  context.Context
	repo string
	raw  []byte
	mt   types.MediaType
}

func (i *index) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *index) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *index) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *index) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *index) IndexManifest() (*v1.IndexManifest, error) {
	m, err := v1.ParseIndexManifest(bytes.NewReader(i.raw))
	if err != nil {
		return nil, fmt.Errorf("imagesource: %w", err)
	}
	return m, nil
}

func (i *index) Image(h v1.Hash) (v1.Image, error) {
	raw, mt, err := i.src.manifest(i.ctx, i.repo, h)
	if err != nil {
		return nil, err
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("imagesource: %s@%s is not an image (%s)", i.repo, h, mt)
	}
	return i.src.image(i.ctx, i.repo, raw, mt)
}

func (i *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	raw, mt, err := i.src.manifest(i.ctx, i.repo, h)
	if err != nil {
		return nil, err
	}
	if !mt.IsIndex() {
		return nil, fmt.Errorf("imagesource: %s@%s is not an index (%s)", i.repo, h, mt)
	}
	return &index{src: i.src, ctx: i.ctx, repo: i.repo, raw: raw, mt: mt}, nil
}
