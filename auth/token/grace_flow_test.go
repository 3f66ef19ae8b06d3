package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/tokens"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestUploadGraceThroughRegistry: a push token that expires in the middle
// of a chunked upload may finish that upload, and nothing else.
func TestUploadGraceThroughRegistry(t *testing.T) {
	clock := &fakeClock{t: time.Now().Add(-time.Minute)}
	st := newStack(t, clock.Now)

	do := func(method, url, tok string, body []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	getTokenAs := func(user, password, scope string) string {
		req, _ := http.NewRequest("GET", st.url+"/token?service=berth&scope="+scope, nil)
		req.SetBasicAuth(user, password)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r struct{ Token string }
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil || r.Token == "" {
			t.Fatalf("token: %v", err)
		}
		return r.Token
	}
	getToken := func(scope string) string { return getTokenAs("admin", "admin-pw", scope) }
	start := func(tok string) string {
		res := do("POST", st.url+"/v2/team/app/blobs/uploads/", tok, nil)
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload: %d", res.StatusCode)
		}
		loc := res.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = st.url + loc
		}
		return loc
	}
	withQuery := func(loc, q string) string {
		if strings.Contains(loc, "?") {
			return loc + "&" + q
		}
		return loc + "?" + q
	}

	// Two identities allowed to push to team/app, with tokens that were
	// both valid when each session started.
	tok := getToken("repository:team/app:pull,push")
	bob, bobSecret, err := st.toks.Create(t.Context(), &auth.Identity{Subject: "admin", Admin: true},
		tokens.CreateRequest{Name: "bob", Scopes: []string{"repository:team/*:pull,push"}, ExpiresIn: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bobTok := getTokenAs(bob.Username, bobSecret, "repository:team/app:pull,push")
	loc := start(tok)
	other := start(tok)
	bobLoc := start(bobTok)

	// The token (5 minutes) expires while the layer uploads.
	clock.Add(20 * time.Minute)
	chunk := bytes.Repeat([]byte("layer"), 1000)
	// Another identity's expired token gets no grace on the admin's
	// session, though it could push there while valid; the admin's
	// expired token none on bob's.
	if res := do("PATCH", loc, bobTok, chunk); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PATCH of another identity's upload with an expired token: %d", res.StatusCode)
	}
	if res := do("PUT", withQuery(loc, "digest="+fmt.Sprintf("sha256:%x", sha256.Sum256(nil))), bobTok, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PUT of another identity's upload with an expired token: %d", res.StatusCode)
	}
	if res := do("PATCH", bobLoc, tok, chunk); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PATCH of bob's upload with the admin's expired token: %d", res.StatusCode)
	}
	if res := do("PATCH", bobLoc, bobTok, chunk); res.StatusCode != http.StatusAccepted {
		t.Fatalf("bob's own upload in grace: %d", res.StatusCode)
	}
	if res := do("PATCH", loc, tok, chunk); res.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH with an expired token in grace: %d", res.StatusCode)
	}
	// Not for anything else: a new upload, a manifest, a blob read.
	if res := do("POST", st.url+"/v2/team/app/blobs/uploads/", tok, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("new upload with an expired token: %d", res.StatusCode)
	}
	if res := do("GET", st.url+"/v2/team/app/tags/list", tok, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tags with an expired token: %d", res.StatusCode)
	}
	// An upload path naming another repository than its session's.
	sessionID := loc[strings.LastIndex(loc, "/")+1:]
	if i := strings.IndexByte(sessionID, '?'); i >= 0 {
		sessionID = sessionID[:i]
	}
	if res := do("PATCH", st.url+"/v2/other/app/blobs/uploads/"+sessionID, tok, chunk); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("grace through another repository's path: %d", res.StatusCode)
	}
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(chunk))
	if res := do("PUT", withQuery(loc, "digest="+dgst), tok, nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT with an expired token in grace: %d", res.StatusCode)
	}

	// Past the grace window (an hour after expiry), even the upload stops.
	clock.Add(time.Hour)
	if res := do("PATCH", other, tok, chunk); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PATCH past the grace window: %d", res.StatusCode)
	}
}
