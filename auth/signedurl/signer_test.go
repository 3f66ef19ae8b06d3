package signedurl_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/opencontainers/go-digest"
)

var (
	t0      = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	key1    = signedurl.Key{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}
	key2    = signedurl.Key{ID: "k2", Secret: bytes.Repeat([]byte{2}, 32)}
	dgst    = digest.FromString("one")
	dgstOth = digest.FromString("other")
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newSigner(t *testing.T, clock *fakeClock, keys ...signedurl.Key) *signedurl.Signer {
	t.Helper()
	s, err := signedurl.NewSigner(keys, &signedurl.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}

func TestSignVerify(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := newSigner(t, clock, key1)
	for _, kind := range []signedurl.Kind{signedurl.Manifest, signedurl.Blob} {
		p, err := s.Sign("team/app", kind, dgst, t0.Add(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if want := "/v2/team/app/" + string(kind) + "/" + dgst.String() + "?"; !strings.HasPrefix(p, want) {
			t.Fatalf("path %q, want prefix %q", p, want)
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			r := request(m, p)
			if !signedurl.Signed(r) {
				t.Fatal("Signed = false")
			}
			id, err := s.Verify(r)
			if err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			if id.Subject != signedurl.Subject || id.Admin || len(id.Scopes) != 1 || id.Scopes[0].String() != "repository:team/app:pull" {
				t.Fatalf("identity %+v", id)
			}
			if !id.ExpiresAt.Equal(t0.Add(10 * time.Minute)) {
				t.Fatalf("ExpiresAt %v", id.ExpiresAt)
			}
		}
	}
}

// tamper returns p with query parameter k set to v (deleted when v is "").
func tamper(p, k, v string) string {
	u, _ := url.Parse(p)
	q := u.Query()
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestVerifyRefuses(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := newSigner(t, clock, key1, key2)
	exp := t0.Add(10 * time.Minute)
	p, err := s.Sign("team/app", signedurl.Blob, dgst, exp)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p)
	q := u.Query()
	sig := q.Get(signedurl.ParamSignature)
	flipped := []byte(sig)
	flipped[3] ^= 1
	if flipped[3] == '-' || flipped[3] == '_' { // keep it base64url either way
		flipped[3] = 'A'
	}
	other := func(path string) string { return path + "?" + u.RawQuery }
	// A signature made by key1 presented as key2's.
	s1 := newSigner(t, clock, key1)
	p1, _ := s1.Sign("team/app", signedurl.Blob, dgst, exp)

	cases := []struct {
		name, method, target string
	}{
		{"flipped signature", "GET", tamper(p, signedurl.ParamSignature, string(flipped))},
		{"truncated signature", "GET", tamper(p, signedurl.ParamSignature, sig[:len(sig)-2])},
		{"missing signature", "GET", tamper(p, signedurl.ParamSignature, "")},
		{"missing expiry", "GET", tamper(p, signedurl.ParamExpires, "")},
		{"missing key ID", "GET", tamper(p, signedurl.ParamKeyID, "")},
		{"later expiry", "GET", tamper(p, signedurl.ParamExpires, strconv.FormatInt(exp.Unix()+60, 10))},
		{"earlier expiry", "GET", tamper(p, signedurl.ParamExpires, strconv.FormatInt(exp.Unix()-1, 10))},
		{"expiry with a leading zero", "GET", tamper(p, signedurl.ParamExpires, "0"+q.Get(signedurl.ParamExpires))},
		{"other key ID", "GET", tamper(p1, signedurl.ParamKeyID, "k2")},
		{"unknown key ID", "GET", tamper(p, signedurl.ParamKeyID, "k9")},
		{"other digest", "GET", other("/v2/team/app/blobs/" + dgstOth.String())},
		{"other repository", "GET", other("/v2/team/other/blobs/" + dgst.String())},
		{"other kind", "GET", other("/v2/team/app/manifests/" + dgst.String())},
		{"sub-path", "GET", other("/v2/team/app/blobs/" + dgst.String() + "/x")},
		{"extra parameter", "GET", p + "&n=1"},
		{"repeated parameter", "GET", p + "&" + signedurl.ParamKeyID + "=k2"},
		{"PUT", "PUT", p},
		{"DELETE", "DELETE", p},
		{"POST", "POST", p},
		{"PATCH", "PATCH", p},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := s.Verify(request(c.method, c.target))
			if !errors.Is(err, auth.ErrUnauthenticated) || errcode.Of(err) != errcode.Unauthenticated {
				t.Fatalf("Verify(%s %s) = %+v, %v; want ErrUnauthenticated", c.method, c.target, id, err)
			}
			if strings.Contains(err.Error(), sig) {
				t.Fatalf("error %q contains the signature", err)
			}
		})
	}
	// The unmodified URL still works: the refusals above are not a
	// broken signer.
	if _, err := s.Verify(request("GET", p)); err != nil {
		t.Fatal(err)
	}
}

func TestExpiry(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := newSigner(t, clock, key1)
	p, err := s.Sign("app", signedurl.Manifest, dgst, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	clock.now = t0.Add(time.Minute - time.Nanosecond)
	if _, err := s.Verify(request("GET", p)); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clock.now = t0.Add(time.Minute)
	if _, err := s.Verify(request("GET", p)); !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at expiry: %v", err)
	}

	// A signer whose clock runs ahead: its longest-lived URL still
	// verifies here, within MaxClockSkew.
	ahead := &fakeClock{now: clock.now.Add(30 * time.Second)}
	p, err = newSigner(t, ahead, key1).Sign("app", signedurl.Manifest, dgst, ahead.now.Add(signedurl.DefaultMaxTTL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(request("GET", p)); err != nil {
		t.Fatalf("signed by a clock 30 s ahead: %v", err)
	}

	// A URL signed under a longer MaxTTL is refused once it is lowered.
	long, err := signedurl.NewSigner([]signedurl.Key{key1}, &signedurl.Options{Now: clock.Now, MaxTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err = long.Sign("app", signedurl.Manifest, dgst, clock.now.Add(20*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Verify(request("GET", p)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(request("GET", p)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("beyond MaxTTL: %v", err)
	}
}

func TestRotation(t *testing.T) {
	clock := &fakeClock{now: t0}
	old := newSigner(t, clock, key1)
	both := newSigner(t, clock, key1, key2)
	next := newSigner(t, clock, key2)
	exp := t0.Add(time.Minute)
	pOld, _ := old.Sign("app", signedurl.Blob, dgst, exp)
	pNew, _ := both.Sign("app", signedurl.Blob, dgst, exp)
	if got := mustQuery(t, pNew).Get(signedurl.ParamKeyID); got != "k2" {
		t.Fatalf("signed with %q, want the newest key k2", got)
	}
	for _, c := range []struct {
		s    *signedurl.Signer
		p    string
		want bool
	}{{both, pOld, true}, {both, pNew, true}, {next, pNew, true}, {next, pOld, false}, {old, pNew, false}} {
		_, err := c.s.Verify(request("GET", c.p))
		if (err == nil) != c.want {
			t.Errorf("keys %v verify %s: %v, want ok=%v", c.s.KeyIDs(), mustQuery(t, c.p).Get(signedurl.ParamKeyID), err, c.want)
		}
	}
}

func mustQuery(t *testing.T, p string) url.Values {
	u, err := url.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestSignRefuses(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := newSigner(t, clock, key1)
	for _, c := range []struct {
		name string
		repo string
		kind signedurl.Kind
		d    digest.Digest
		exp  time.Time
	}{
		{"tag", "app", signedurl.Manifest, "latest", t0.Add(time.Minute)},
		{"bad digest", "app", signedurl.Blob, "sha256:xyz", t0.Add(time.Minute)},
		{"bad repository", "App/../x", signedurl.Blob, dgst, t0.Add(time.Minute)},
		{"bad kind", "app", "tags", dgst, t0.Add(time.Minute)},
		{"past", "app", signedurl.Blob, dgst, t0.Add(-time.Second)},
		{"now", "app", signedurl.Blob, dgst, t0},
		{"beyond MaxTTL", "app", signedurl.Blob, dgst, t0.Add(signedurl.DefaultMaxTTL + time.Second)},
	} {
		if p, err := s.Sign(c.repo, c.kind, c.d, c.exp); errcode.Of(err) != errcode.InvalidArgument {
			t.Errorf("%s: Sign = %q, %v; want InvalidArgument", c.name, p, err)
		}
	}
}

func TestNewSignerRefuses(t *testing.T) {
	short := signedurl.Key{ID: "s", Secret: make([]byte, 31)}
	for name, c := range map[string]struct {
		keys []signedurl.Key
		opts *signedurl.Options
	}{
		"no keys":       {nil, nil},
		"short key":     {[]signedurl.Key{short}, nil},
		"empty ID":      {[]signedurl.Key{{Secret: key1.Secret}}, nil},
		"bad ID":        {[]signedurl.Key{{ID: "a b", Secret: key1.Secret}}, nil},
		"duplicate ID":  {[]signedurl.Key{key1, {ID: "k1", Secret: key2.Secret}}, nil},
		"negative TTL":  {[]signedurl.Key{key1}, &signedurl.Options{MaxTTL: -1}},
		"TTL too large": {[]signedurl.Key{key1}, &signedurl.Options{MaxTTL: signedurl.LimitMaxTTL + 1}},
	} {
		if _, err := signedurl.NewSigner(c.keys, c.opts); err == nil {
			t.Errorf("%s: NewSigner succeeded", name)
		}
	}
}

func TestWrap(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := newSigner(t, clock, key1)
	admin := &auth.Identity{Subject: "admin", Admin: true}
	a := s.Wrap(auth.AuthenticatorFunc(func(r *http.Request) (*auth.Identity, error) {
		if r.Header.Get("Authorization") != "" {
			return admin, nil
		}
		return auth.Anonymous, nil
	}))
	r := request("GET", "/v2/app/blobs/"+dgst.String()+"?n=1")
	r.Header.Set("Authorization", "Basic x")
	if id, err := a.Authenticate(r); err != nil || id != admin {
		t.Fatalf("unsigned request: %+v, %v", id, err)
	}
	p, _ := s.Sign("app", signedurl.Blob, dgst, t0.Add(time.Minute))
	r = request("GET", tamper(p, signedurl.ParamSignature, "AAAA"))
	r.Header.Set("Authorization", "Basic x")
	if id, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("bad signature with other credentials: %+v, %v; want ErrUnauthenticated, never a fallback", id, err)
	}
	if id, err := s.Wrap(nil).Authenticate(request("GET", "/v2/")); err != nil || !id.IsAnonymous() {
		t.Fatalf("Wrap(nil): %+v, %v", id, err)
	}
}

func FuzzVerify(f *testing.F) {
	clock := &fakeClock{now: t0}
	s, _ := signedurl.NewSigner([]signedurl.Key{key1}, &signedurl.Options{Now: clock.Now})
	p, _ := s.Sign("app", signedurl.Blob, dgst, t0.Add(time.Minute))
	f.Add("GET", p)
	f.Add("GET", "/v2/app/blobs/x?expires=1&keyid=k1&signature=abc")
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || (method != "GET" && method != "HEAD") {
			return
		}
		r := &http.Request{Method: method, URL: u}
		id, err := s.Verify(r)
		if err == nil && (u.Path != "/v2/app/blobs/"+dgst.String() || id.Scopes[0].Name != "app") {
			t.Fatalf("accepted %s %q", method, target)
		}
	})
}
