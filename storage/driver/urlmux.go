package driver

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
)

// MetadataURLOpener opens a metadata backend from a URL. Backends provide
// one (sqlmeta.URLOpener, memmeta.URLOpener) and register it for their
// schemes with DefaultMetadataURLMux in an init function.
type MetadataURLOpener interface {
	OpenMetadataURL(ctx context.Context, u *url.URL) (Metadata, error)
}

// MetadataURLMux maps URL schemes to openers, in the style of
// gocloud.dev's URL muxes. The zero value is an empty mux ready to use.
type MetadataURLMux struct {
	mu      sync.RWMutex
	openers map[string]MetadataURLOpener
}

var defaultMetadataURLMux = new(MetadataURLMux)

// DefaultMetadataURLMux returns the process-wide mux that backend packages
// register their schemes with when imported. It is the only global state
// of the storage packages.
func DefaultMetadataURLMux() *MetadataURLMux { return defaultMetadataURLMux }

// RegisterMetadata registers o for scheme. It panics if scheme is empty or
// already registered: registration happens in init functions, where a
// clash is a programming error.
func (m *MetadataURLMux) RegisterMetadata(scheme string, o MetadataURLOpener) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if scheme == "" {
		panic("driver: RegisterMetadata with an empty scheme")
	}
	if _, dup := m.openers[scheme]; dup {
		panic(fmt.Sprintf("driver: metadata scheme %q registered twice", scheme))
	}
	if m.openers == nil {
		m.openers = map[string]MetadataURLOpener{}
	}
	m.openers[scheme] = o
}

// MetadataSchemes returns the registered schemes, sorted.
func (m *MetadataURLMux) MetadataSchemes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var s []string
	for k := range m.openers {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// OpenMetadata parses urlstr and opens it with the opener registered for
// its scheme. Errors never repeat the URL's password.
func (m *MetadataURLMux) OpenMetadata(ctx context.Context, urlstr string) (Metadata, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		// url.Parse's error quotes the input, password included.
		return nil, fmt.Errorf("driver: malformed metadata URL: %w", ErrInvalidArgument)
	}
	return m.OpenMetadataURL(ctx, u)
}

// OpenMetadataURL opens u with the opener registered for its scheme.
func (m *MetadataURLMux) OpenMetadataURL(ctx context.Context, u *url.URL) (Metadata, error) {
	m.mu.RLock()
	o, ok := m.openers[u.Scheme]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("driver: no metadata backend registered for scheme %q in %s (registered: %v; import the backend package): %w",
			u.Scheme, u.Redacted(), m.MetadataSchemes(), ErrInvalidArgument)
	}
	return o.OpenMetadataURL(ctx, u)
}
