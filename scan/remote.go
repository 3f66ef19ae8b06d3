package scan

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RemoteSource is an ImageSource reading images from a registry over
// HTTP with go-containerregistry's remote package, for pipelines that run
// beside a registry rather than inside it.
type RemoteSource struct {
	// Registry is the registry's host[:port], e.g. "registry.example:5000".
	Registry string
	// Insecure allows plain HTTP.
	Insecure bool
	// Options are passed to remote.Get, e.g. remote.WithAuth with a
	// pull-only credential. The context is added per call.
	Options []remote.Option
}

// Open implements ImageSource. A manifest the registry does not have
// yields an error wrapping driver.ErrNotFound.
func (s *RemoteSource) Open(ctx context.Context, repo string, d v1.Hash) (v1.Image, v1.ImageIndex, error) {
	var opts []name.Option
	if s.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewDigest(s.Registry+"/"+repo+"@"+d.String(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: %w", err)
	}
	desc, err := remote.Get(ref, append([]remote.Option{remote.WithContext(ctx)}, s.Options...)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, nil, fmt.Errorf("scan: %s@%s: %w", repo, d, driver.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("scan: %s@%s: %w", repo, d, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		return nil, idx, err
	}
	img, err := desc.Image()
	return img, nil, err
}
