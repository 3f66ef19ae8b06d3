package auth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
)

// TestParseScopeData runs testdata/scopes: input, "----", expected output,
// blank line; lines starting with '#' are comments.
func TestParseScopeData(t *testing.T) {
	f, err := os.Open("testdata/scopes")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			lines = append(lines, sc.Text())
		}
	}
	n := 0
	for i := 0; i+2 < len(lines); {
		if lines[i] == "" {
			i++
			continue
		}
		in, sep, want := lines[i], lines[i+1], lines[i+2]
		if sep != "----" {
			t.Fatalf("line %q: want ----", sep)
		}
		var got string
		s, err := ParseScope(in)
		if err != nil {
			got = "error: " + err.(*ScopeError).Reason
		} else {
			got = fmt.Sprintf("%s %s %v", s.Type, s.Name, s.Actions)
		}
		if got != want {
			t.Errorf("ParseScope(%q) = %s, want %s", in, got, want)
		}
		n++
		i += 3
	}
	if n < 10 {
		t.Fatalf("only %d cases", n)
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:team/app:pull,push", "registry:catalog:*", "a:b:c", "repository:host:5000/x:pull", "::", "repository:team/**:delete"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			var se *ScopeError
			if !errors.As(err, &se) || len(err.Error()) > 700 {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if sc.Type == "" || sc.Name == "" || len(sc.Actions) == 0 {
			t.Fatalf("incomplete scope %+v from %q", sc, s)
		}
		// The canonical form round-trips.
		again, err := ParseScope(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("round trip of %q: %v, %v", sc.String(), again, err)
		}
		_ = Match(sc.Name, sc.Name)
	})
}

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"team/app", "team/app", true},
		{"team/*", "team/app", true},
		{"team/*", "team/app/x", false},
		{"team/*", "team", false},
		{"*", "team", true},
		{"*", "team/app", false},
		{"team/**", "team", true},
		{"team/**", "team/app/x/y", true},
		{"team/**", "teamx/app", false},
		{"**", "a/b/c", true},
		{"**/app", "a/b/app", true},
		{"**/app", "app", true},
		{"**/app", "a/b/apps", false},
		{"a/**/b/**/c", "a/x/b/y/z/c", true},
		{"a/**/b/**/c", "a/x/y/z/c", false},
		{"team/a?p", "team/app", true},
		{"team/[ab]*", "team/app", true},
		{"team/[", "team/[", false},
		{"team/**/[", "team/x/[", false},
		{"team/a**", "team/abc", true}, // "**" inside a segment is "*"
		{"team/a**", "team/a/b", false},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	// Many "**" stay fast.
	p := strings.Repeat("**/a/", 30) + "b"
	n := strings.Repeat("a/", 120) + "c"
	start := time.Now()
	if Match(p, n) {
		t.Fatal("matched")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Match took %v", d)
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"team/*", "team/**", "a/b?c/[xy]", "*"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "team/", "/team", "team//app", "team/[", `team/\`} {
		if err := ValidatePattern(p); !errors.Is(err, ErrBadPattern) {
			t.Errorf("%q: %v, want ErrBadPattern", p, err)
		}
	}
}

func TestUploadGrace(t *testing.T) {
	ctx := context.Background()
	if _, ok := UploadGraceFrom(ctx); ok {
		t.Fatal("grace without WithUploadGrace")
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g, ok := UploadGraceFrom(WithUploadGrace(ctx, "team/app", t0))
	if !ok || g.Repository != "team/app" || !g.StartedAt.Equal(t0) {
		t.Fatalf("%+v %v", g, ok)
	}
	iat, exp := t0.Add(-time.Minute), t0.Add(5*time.Minute)
	cases := []struct {
		iat, exp, now time.Time
		window        time.Duration
		want          bool
	}{
		{iat, exp, exp.Add(30 * time.Minute), time.Hour, true},
		{iat, exp, exp.Add(61 * time.Minute), time.Hour, false},            // past the window
		{iat, exp, exp.Add(time.Minute), 0, false},                         // grace disabled
		{t0.Add(time.Minute), exp, exp.Add(time.Minute), time.Hour, false}, // issued after the session started
		{iat, t0.Add(-time.Second), t0.Add(time.Minute), time.Hour, false}, // expired before the session started
		{iat, time.Time{}, t0, time.Hour, false},                           // no expiry known
	}
	for i, c := range cases {
		if got := g.Allows(c.iat, c.exp, c.now, c.window); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
	if !g.HeldBy("anyone") {
		t.Error("a grace without a recorded starter refuses its holder")
	}
	g.StartedBy = "alice"
	if !g.HeldBy("alice") || g.HeldBy("bob") || g.HeldBy("") {
		t.Error("a grace with a recorded starter is held by another subject")
	}
	held := []Scope{
		{Type: TypeRepository, Name: "team/*", Actions: []string{Pull, Push, Delete}},
		{Type: TypeRepository, Name: "other/app", Actions: []string{All}},
		{Type: TypeRegistry, Name: "catalog", Actions: []string{All}},
	}
	got := g.Restrict(held)
	if len(got) != 1 || got[0].String() != "repository:team/app:pull,push" {
		t.Fatalf("Restrict = %v", got)
	}
	if got := (UploadGrace{Repository: "x/y"}).Restrict(held); got == nil || len(got) != 0 {
		t.Fatalf("Restrict outside the scopes = %#v", got)
	}
}

func TestByScheme(t *testing.T) {
	basic := AuthenticatorFunc(func(*http.Request) (*Identity, error) { return &Identity{Subject: "basic"}, nil })
	bearer := AuthenticatorFunc(func(*http.Request) (*Identity, error) { return &Identity{Subject: "bearer"}, nil })
	a := ByScheme(basic, bearer)
	r := httptest.NewRequest("GET", "/v2/", nil)
	if id, err := a.Authenticate(r); err != nil || !id.IsAnonymous() {
		t.Fatalf("none: %v %v", id, err)
	}
	for h, want := range map[string]string{"Basic YTpi": "basic", "basic YTpi": "basic", "Bearer x.y.z": "bearer", "BEARER x": "bearer"} {
		r.Header.Set("Authorization", h)
		if id, err := a.Authenticate(r); err != nil || id.Subject != want {
			t.Errorf("%q: %v %v", h, id, err)
		}
	}
	for _, h := range []string{"Digest x", "Negotiate", "Bearer"} {
		r.Header.Set("Authorization", h)
		if h == "Bearer" {
			a = ByScheme(basic, nil)
			r.Header.Set("Authorization", "Bearer x")
		}
		if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q: %v", h, err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	for h, want := range map[string]string{"": "", "Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer ": "", "Bearer": ""} {
		r.Header.Set("Authorization", h)
		got, err := BearerToken(r)
		if got != want || (want == "") != errors.Is(err, ErrNoCredentials) {
			t.Errorf("%q: %q %v", h, got, err)
		}
	}
}

func TestThrottledError(t *testing.T) {
	var err error = &ThrottledError{RetryAfter: 1500 * time.Millisecond}
	if !errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnauthenticated) {
		t.Fatal("Is")
	}
	if errcode.Of(err) != errcode.ResourceExhausted {
		t.Fatalf("code %v", errcode.Of(err))
	}
	if s := err.(*ThrottledError).RetryAfterSeconds(); s != 2 {
		t.Fatalf("RetryAfterSeconds = %d", s)
	}
	if s := (&ThrottledError{}).RetryAfterSeconds(); s != 1 {
		t.Fatalf("RetryAfterSeconds = %d", s)
	}
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"team/*", "team/app"}, {"team/**", "team/a/b"}, {"**/x/**", "a/x/b"}, {"[a-", "a"}, {"a/**/b", "a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 512 || len(name) > 512 {
			return
		}
		got := Match(pattern, name)
		if !strings.Contains(pattern, "**") {
			ok, err := path.Match(pattern, name)
			if want := err == nil && ok; got != want {
				t.Fatalf("Match(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
			}
		}
		// A literal name always matches itself.
		if !IsPattern(name) && !Match(name, name) {
			t.Fatalf("literal %q does not match itself", name)
		}
		// "prefix/**" matches everything under a literal prefix.
		if !IsPattern(name) && name != "" && !Match(name+"/**", name+"/x/y") {
			t.Fatalf("%q/** does not match below it", name)
		}
	})
}

func TestWithUploadSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var calls int
	inner := AuthenticatorFunc(func(r *http.Request) (*Identity, error) {
		calls++
		if g, ok := UploadGraceFrom(r.Context()); ok && g.Repository == "team/app" {
			// An expired credential of the subject it names.
			return &Identity{Subject: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer expired-"), Grace: true}, nil
		}
		if r.Header.Get("Authorization") == "Bearer good" {
			return &Identity{Subject: "ok"}, nil
		}
		return nil, ErrUnauthenticated
	})
	lookups := 0
	lookup := func(_ context.Context, id string) (UploadSession, error) {
		lookups++
		switch id {
		case "s1":
			return UploadSession{Repository: "team/app", StartedBy: "alice", StartedAt: t0}, nil
		case "s2":
			return UploadSession{Repository: "team/app", StartedBy: "alice"}, nil
		case "s3": // no starter recorded
			return UploadSession{Repository: "team/app", StartedAt: t0}, nil
		}
		return UploadSession{}, errors.New("no such session")
	}
	a := WithUploadSessions(inner, lookup)
	cases := []struct {
		method, path, auth string
		want               string // subject, or "" for ErrUnauthenticated
		lookups            int
	}{
		{"PATCH", "/v2/team/app/blobs/uploads/s1", "Bearer good", "ok", 0},
		{"PATCH", "/v2/team/app/blobs/uploads/s1", "Bearer expired-alice", "alice", 1},
		{"PUT", "/v2/team/app/blobs/uploads/s1", "Bearer expired-alice", "alice", 1},
		{"GET", "/v2/team/app/blobs/uploads/s1", "Bearer expired-alice", "alice", 1},
		{"DELETE", "/v2/team/app/blobs/uploads/s1", "Bearer expired-alice", "alice", 1},
		// Another subject's expired credentials: no grace on alice's upload.
		{"PATCH", "/v2/team/app/blobs/uploads/s1", "Bearer expired-bob", "", 1},
		{"PUT", "/v2/team/app/blobs/uploads/s1", "Bearer expired-bob", "", 1},
		{"PATCH", "/v2/team/app/blobs/uploads/s1", "Bearer expired-", "", 1},
		{"PATCH", "/v2/team/app/blobs/uploads/s3", "Bearer expired-alice", "", 1},
		{"POST", "/v2/team/app/blobs/uploads/", "Bearer expired", "", 0},
		{"POST", "/v2/team/app/blobs/uploads/s1", "Bearer expired", "", 0},
		{"PATCH", "/v2/other/app/blobs/uploads/s1", "Bearer expired", "", 1},
		{"PATCH", "/v2/team/app/blobs/uploads/s2", "Bearer expired", "", 1},
		{"PATCH", "/v2/team/app/blobs/uploads/nope", "Bearer expired", "", 1},
		{"GET", "/v2/team/app/manifests/latest", "Bearer expired", "", 0},
		{"GET", "/v2/team/app/blobs/sha256:abc", "Bearer expired", "", 0},
		{"PATCH", "/v3/team/app/blobs/uploads/s1", "Bearer expired", "", 0},
	}
	for _, c := range cases {
		lookups = 0
		r := httptest.NewRequest(c.method, c.path, nil)
		r.Header.Set("Authorization", c.auth)
		id, err := a.Authenticate(r)
		got := ""
		if err == nil {
			got = id.Subject
		} else if !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s %s: %v", c.method, c.path, err)
		}
		if got != c.want || lookups != c.lookups {
			t.Errorf("%s %s %s: %q after %d lookups, want %q after %d", c.method, c.path, c.auth, got, lookups, c.want, c.lookups)
		}
		if _, ok := UploadGraceFrom(r.Context()); ok {
			t.Error("the caller's request was marked")
		}
	}
	_ = calls
}
