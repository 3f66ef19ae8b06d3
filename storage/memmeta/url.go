package memmeta

import (
	"context"
	"fmt"
	"net/url"

	"github.com/berth-dev/berth/storage/driver"
)

// Scheme is the URL scheme memmeta registers with
// driver.DefaultMetadataURLMux: "mem://" opens a new, empty backend.
const Scheme = "mem"

func init() {
	driver.DefaultMetadataURLMux().RegisterMetadata(Scheme, &URLOpener{})
}

// URLOpener opens in-memory backends from "mem://" URLs, which take no
// host, path or query parameters. The zero value is ready to use.
type URLOpener struct{}

var _ driver.MetadataURLOpener = (*URLOpener)(nil)

// OpenMetadataURL returns a new, empty *Metadata.
func (*URLOpener) OpenMetadataURL(ctx context.Context, u *url.URL) (driver.Metadata, error) {
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("memmeta: URL scheme %q is not %q: %w", u.Scheme, Scheme, driver.ErrInvalidArgument)
	}
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("memmeta: %s: mem:// URLs take no host, path or query parameters: %w", u.Redacted(), driver.ErrInvalidArgument)
	}
	return New(), nil
}
