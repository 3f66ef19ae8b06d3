// Package registrytest runs a fully wired, in-memory registry for tests:
// the registry handler over a storage.Store with a memory bucket and the
// in-memory metadata backend, encryption on, behind an httptest server.
package registrytest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"gocloud.dev/secrets/localsecrets"
)

// Admin credentials of the server's user with every permission.
const (
	AdminUser     = "admin"
	AdminPassword = "registrytest-admin"
)

// Options adjusts the server. A nil *Options is the zero value.
type Options struct {
	// Registry options; Authenticator and Authorizer default to the admin
	// user above (HTTP Basic) and authtest.AllowAll, so anonymous requests
	// may do everything too unless an Authorizer is set.
	Registry registry.Options
	// Storage options; encryption is on with a fresh random key unless
	// Storage.DisableEncryption is set.
	Storage storage.Options
}

// Server is a running test registry.
type Server struct {
	*httptest.Server
	// Store is the server's store, for inspecting or seeding content.
	Store *storage.Store
	// Handler is the registry handler.
	Handler *registry.Handler
}

// Host returns the server's host:port, as image references use it.
func (s *Server) Host() string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

// NewServer starts a registry over plain HTTP on a loopback port and stops
// it when the test ends.
func NewServer(t testing.TB, opts *Options) *Server {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Storage.Keeper == nil && !o.Storage.DisableEncryption {
		key, err := localsecrets.NewRandomKey()
		if err != nil {
			t.Fatal(err)
		}
		o.Storage.Keeper = localsecrets.NewKeeper(key)
	}
	meta := memmeta.New()
	store, err := storage.Open(t.Context(), "mem://", meta, &o.Storage)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	if o.Registry.Authenticator == nil {
		o.Registry.Authenticator = authtest.Users{Passwords: map[string]string{AdminUser: AdminPassword}, Admins: []string{AdminUser}}
	}
	if o.Registry.Authorizer == nil {
		o.Registry.Authorizer = authtest.AllowAll{}
	}
	h, err := registry.New(store, &o.Registry)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = store.Close()
		_ = meta.Close()
	})
	return &Server{Server: srv, Store: store, Handler: h}
}

// AdminTransport returns a RoundTripper that sends the admin credentials.
func (s *Server) AdminTransport() http.RoundTripper {
	return basicTransport{user: AdminUser, pass: AdminPassword, next: s.Client().Transport}
}

type basicTransport struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

var _ auth.Authenticator = authtest.Users{}
