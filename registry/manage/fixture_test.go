package manage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/manage"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/scanapi"
	"github.com/berth-dev/berth/scan/scantest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/imagesource"
	_ "github.com/berth-dev/berth/storage/sqlmeta" // sqlite:// and postgres:// metadata
	gcrauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "gocloud.dev/blob/memblob"
	"gocloud.dev/secrets/localsecrets"
)

const adminPassword = "manage-test-admin"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// server is a fully wired registry: the OCI API, the management API of
// this package, lifecycle policies, tokens, the vulnerability routes over
// a scan pipeline and signed URLs, over real SQL metadata, an encrypted
// memory bucket, HTTP Basic (the admin and registry tokens, and signed
// URLs on /v2/) and the default policy, composed as registryd composes
// them.
type server struct {
	t     *testing.T
	srv   *httptest.Server
	store *storage.Store
	reg   driver.Registry
	// scans is the scan pipeline, not started until startScans, so that
	// tests see images whose reports are pending; scanner is its fake
	// scanner (an image scripted with SetResult gets that report, any
	// other a StatusUnknown one).
	scans   *scan.Pipeline
	scanner *scantest.Scanner
	// creds maps user labels to "user:secret"; "" is anonymous.
	creds map[string][2]string
}

// backends runs f against SQLite and PostgreSQL metadata.
func backends(t *testing.T, f func(t *testing.T, metaURL string)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "meta.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, testsvc.Postgres(t))
	})
}

func newServer(t *testing.T, metaURL string) *server {
	t.Helper()
	ctx := context.Background()
	meta, err := storage.OpenMetadata(ctx, metaURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(ctx, "mem://", meta, &storage.Options{Keeper: localsecrets.NewKeeper(key), Logger: quiet, PullFlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg, err := store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	authz := policy.New(reg)
	toks, err := tokens.New(reg, &tokens.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, signedurl.MinKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	signer, err := signedurl.NewSigner([]signedurl.Key{{ID: "test", Secret: secret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	authn := signer.Wrap(basic.New(basic.NewStatic("admin", adminPassword, auth.Identity{Admin: true}), toks))
	h, err := registry.New(store, &registry.Options{Authenticator: authn, Authorizer: authz, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tokenAPI, err := tokens.NewAPI(toks, authn, authz, &tokens.APIOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := lifecycle.NewRunner(reg, store, &lifecycle.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lh, err := lifecycle.NewHandler(runner, func(r *http.Request, repo string, write bool) error {
		actions := []string{auth.Pull}
		if write {
			actions = []string{auth.Pull, auth.Push, auth.Delete}
		}
		_, err := h.Authorize(r, repo, actions...)
		return err
	}, &lifecycle.HandlerOptions{Logger: quiet, Identity: func(r *http.Request) string { return h.Identify(r).Subject }})
	if err != nil {
		t.Fatal(err)
	}
	mh, err := manage.New(store, h.Authorize, &manage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// Vulnerability scanning: a pipeline whose jobs live in the metadata
	// database, reading images from the store, and its routes (pull to
	// read, push to trigger).
	scanner := scantest.NewScanner(scan.Info{Name: "fake", Version: "1"})
	src, err := imagesource.New(store)
	if err != nil {
		t.Fatal(err)
	}
	pipeline, err := scan.NewPipeline(scanner, src, reg, reg, &scan.PipelineOptions{Logger: quiet, PollInterval: 20 * time.Millisecond, MaxAttempts: 2, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipeline.Close() })
	scans, err := scanapi.NewHandler(pipeline, reg, func(r *http.Request, repo string, write bool) error {
		actions := []string{auth.Pull}
		if write {
			actions = append(actions, auth.Push)
		}
		_, err := h.Authorize(r, repo, actions...)
		return err
	}, &scanapi.HandlerOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// Signed URLs, minted for callers holding pull.
	signed, err := signedurl.NewHandler(signer, reg, func(r *http.Request, repo string) (*auth.Identity, error) {
		return h.Authorize(r, repo, auth.Pull)
	}, &signedurl.HandlerOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/tokens", tokenAPI)
	mux.Handle("/api/v1/tokens/", tokenAPI)
	mux.Handle("/", scans.Wrap(scanapi.QueuePushes(pipeline, lh.Wrap(signed.Wrap(h)))))
	// As registryd does: the management API in front of the mux.
	srv := httptest.NewServer(mh.Wrap(mux))
	t.Cleanup(srv.Close)
	return &server{t: t, srv: srv, store: store, reg: reg, scans: pipeline, scanner: scanner, creds: map[string][2]string{
		"admin": {"admin", adminPassword},
		"bad":   {"admin", "wrong"},
	}}
}

// startScans starts the scan pipeline: the images pushed so far (and any
// pushed later) get scanned.
func (s *server) startScans() {
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	s.scans.Start(ctx)
}

// createToken creates a registry token as admin and registers its
// credentials as user label.
func (s *server) createToken(label string, scopes ...string) {
	s.t.Helper()
	b, _ := json.Marshal(map[string]any{"name": label, "scopes": scopes, "expiresIn": "1h"})
	req, _ := http.NewRequest("POST", s.srv.URL+"/api/v1/tokens", bytes.NewReader(b))
	req.SetBasicAuth("admin", adminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Username, Secret string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 201 {
		s.t.Fatalf("create token: %d %v", resp.StatusCode, err)
	}
	s.creds[label] = [2]string{tok.Username, tok.Secret}
}

func (s *server) ref(repoTag string) name.Reference {
	s.t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(s.srv.URL, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	return ref
}

func (s *server) remoteOpts() []remote.Option {
	return []remote.Option{remote.WithAuth(&gcrauthn.Basic{Username: "admin", Password: adminPassword}), remote.WithTransport(s.srv.Client().Transport)}
}

// pushImage pushes a random image of the platform (none when os is empty)
// as repoTag and returns it.
func (s *server) pushImage(repoTag, os, arch string) v1.Image {
	s.t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		s.t.Fatal(err)
	}
	if os != "" {
		cf, err := img.ConfigFile()
		if err != nil {
			s.t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = os, arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := remote.Write(s.ref(repoTag), img, s.remoteOpts()...); err != nil {
		s.t.Fatalf("push %s: %v", repoTag, err)
	}
	return img
}

// pushIndex pushes an index of two images (linux/amd64, linux/arm64,
// their configs and descriptors saying so) as repoTag and returns it with
// its children.
func (s *server) pushIndex(repoTag string) (v1.ImageIndex, []v1.Image) {
	s.t.Helper()
	var adds []mutate.IndexAddendum
	var imgs []v1.Image
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			s.t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			s.t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			s.t.Fatal(err)
		}
		imgs = append(imgs, img)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	if err := remote.WriteIndex(s.ref(repoTag), idx, s.remoteOpts()...); err != nil {
		s.t.Fatalf("push %s: %v", repoTag, err)
	}
	return idx, imgs
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// events returns the types and subjects of the outbox's events, in order,
// and acknowledges them.
func (s *server) events() []string {
	s.t.Helper()
	ctx := context.Background()
	evs, err := s.reg.ClaimEvents(ctx, s.store.Options().Now(), 0, 10000)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	var ids []int64
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Subject)
		ids = append(ids, e.ID)
	}
	if err := s.reg.AckEvents(ctx, ids...); err != nil {
		s.t.Fatal(err)
	}
	return out
}
