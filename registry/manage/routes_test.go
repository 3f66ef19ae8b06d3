package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

func TestTags(t *testing.T) {
	backends(t, testTags)
}

func testTags(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("reader", "repository:team/*:pull")
	s.createToken("pusher", "repository:team/*:pull,push")
	a := digestOf(t, s.pushImage("team/app:v1", "linux", "amd64"))
	b := digestOf(t, s.pushImage("team/app:v1", "linux", "amd64")) // moves v1
	c := digestOf(t, s.pushImage("team/app:dev-1", "", ""))
	s.pushImage("team/app:dev-1", "", "") // moves dev-1
	s.events()
	const tags = repos + "/team/app/tags"
	restore := func(d string) string { return `{"digest":"` + d + `"}` }
	unknown := "sha256:" + strings.Repeat("1", 64)

	hist := s.do(step{name: "history", method: "GET", path: tags + "/v1/history", user: "reader", wantStatus: 200})
	var h struct {
		Changes []struct {
			Seq      int64
			Old, New string
			By       string
		}
	}
	if err := json.Unmarshal(hist.body, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Changes) != 2 || h.Changes[0].Old != "" || h.Changes[0].New != a || h.Changes[1].Old != a || h.Changes[1].New != b || h.Changes[1].By != "admin" {
		t.Fatalf("history %s", hist.body)
	}
	page := s.do(step{name: "history page", method: "GET", path: tags + "/v1/history?n=1", user: "reader", wantStatus: 200, wantHeader: map[string]string{"Link": "*"}})
	next := strings.TrimSuffix(strings.TrimPrefix(page.Header.Get("Link"), "<"), `>; rel="next"`)

	for _, st := range []step{
		{name: "next history page", method: "GET", path: next, user: "reader", wantStatus: 200, wantBody: []string{`"old":"` + a + `","new":"` + b + `"`}},
		{name: "a tag that never existed has no history", method: "GET", path: tags + "/nope/history", user: "reader", wantStatus: 200, wantBody: []string{`"changes":[]`}},
		{name: "history of an unknown repository", method: "GET", path: repos + "/team/none/tags/v1/history", user: "pusher", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "history anonymous", method: "GET", path: tags + "/v1/history", wantStatus: 401},
		{name: "bad tag", method: "GET", path: tags + "/-v1/history", user: "reader", wantStatus: 400, invalid: true, wantBody: []string{`"TAG_INVALID"`}},
		{name: "bad last", method: "GET", path: tags + "/v1/history?last=-1", user: "reader", wantStatus: 400, invalid: true},
		{name: "history methods", method: "POST", path: tags + "/v1/history", user: "admin", body: `{}`, wantStatus: 405},
		{name: "restore needs push", method: "POST", path: tags + "/v1/restore", user: "reader", body: restore(a), wantStatus: 403},
		{name: "restore anonymous", method: "POST", path: tags + "/v1/restore", body: restore(a), wantStatus: 401},
		{name: "restore", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore(a), wantStatus: 200,
			wantBody: []string{`"repository":"team/app","name":"v1","digest":"` + a + `"`, `"updatedBy":"token-`}},
		{name: "restore the current digest changes nothing", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore(a), wantStatus: 200},
		{name: "restore a digest the tag never held", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore(c), wantStatus: 400, wantBody: []string{`"DIGEST_INVALID"`, `"field":"digest"`}},
		{name: "restore an unknown tag", method: "POST", path: tags + "/nope/restore", user: "pusher", body: restore(a), wantStatus: 404, wantBody: []string{`"TAG_UNKNOWN"`}},
		{name: "restore without digest", method: "POST", path: tags + "/v1/restore", user: "pusher", body: `{}`, wantStatus: 400, invalid: true},
		{name: "restore unknown field", method: "POST", path: tags + "/v1/restore", user: "pusher", body: `{"digest":"` + a + `","force":true}`, wantStatus: 400, invalid: true},
		{name: "restore bad digest", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore("sha256:xyz"), wantStatus: 400, wantBody: []string{`"DIGEST_INVALID"`}},
		{name: "restore not JSON", method: "POST", path: tags + "/v1/restore", user: "pusher", body: `digest`, wantStatus: 400, invalid: true},
		{name: "restore methods", method: "GET", path: tags + "/v1/restore", user: "admin", wantStatus: 405},
		{name: "immutable tags", method: "PATCH", path: repos + "/team/app", user: "admin", body: `{"immutableTags":true,"immutableTagExclusions":["dev-*"]}`, wantStatus: 200},
		{name: "an immutable tag is not moved", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore(b), wantStatus: 409,
			wantBody: []string{`"code":"TAG_IMMUTABLE"`, `"detail":{"digest":"` + a + `","tag":"v1"}`}},
		{name: "an excluded tag is", method: "POST", path: tags + "/dev-1/restore", user: "pusher", body: restore(c), wantStatus: 200, wantBody: []string{`"digest":"` + c + `"`}},
		{name: "delete the image v1 points at", method: "DELETE", path: repos + "/team/app/images/" + a, user: "admin", wantStatus: 204},
		{name: "a deleted tag can be restored, even immutable", method: "POST", path: tags + "/v1/restore", user: "pusher", body: restore(b), wantStatus: 200, wantBody: []string{`"digest":"` + b + `"`}},
		{name: "once mutable again", method: "PATCH", path: repos + "/team/app", user: "admin", body: `{"immutableTags":false}`, wantStatus: 200},
		{name: "not to a deleted manifest", method: "POST", path: tags + "/v1/restore", user: "admin", body: restore(a), wantStatus: 404, wantBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "not to an unknown one", method: "POST", path: tags + "/v1/restore", user: "admin", body: restore(unknown), wantStatus: 400},
	} {
		s.do(st)
	}
	// Restores are recorded in the history and announced like pushes.
	got := s.events()
	for _, want := range []string{
		storage.EventTagMoved + " team/app:v1", storage.EventTagMoved + " team/app:dev-1",
		storage.EventManifestDeleted + " team/app@" + a, storage.EventTagCreated + " team/app:v1",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no event %q in %v", want, got)
		}
	}
	changes, _, err := s.reg.ListTagHistory(context.Background(), "team/app", "v1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, c := range changes {
		seq = append(seq, string(c.Old)+">"+string(c.New))
	}
	want := []string{">" + a, a + ">" + b, b + ">" + a, a + ">", ">" + b}
	if !slices.Equal(seq, want) {
		t.Errorf("history %v\nwant %v", seq, want)
	}
}

// TestDeleteRepository deletes a repository with content; garbage
// collection then reclaims its blobs, and nothing of another repository.
func TestDeleteRepository(t *testing.T) {
	backends(t, testDeleteRepository)
}

func testDeleteRepository(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("owner", "repository:team/**:*")
	s.createToken("pusher", "repository:team/*:pull,push")
	img := s.pushImage("team/gone:v1", "linux", "amd64")
	idx, _ := s.pushIndex("team/gone:multi")
	keep := s.pushImage("team/kept:v1", "", "")
	ctx := context.Background()
	if err := s.reg.PutPolicy(ctx, &driver.Policy{Repository: "team/gone", Document: []byte(`{"rules":[]}`)}); err != nil {
		t.Fatal(err)
	}
	var gone []digest.Digest
	m, _ := img.Manifest()
	gone = append(gone, digest.Digest(digestOf(t, img)), digest.Digest(m.Config.Digest.String()))
	for _, l := range m.Layers {
		gone = append(gone, digest.Digest(l.Digest.String()))
	}
	gone = append(gone, digest.Digest(digestOf(t, idx)))
	s.events()

	for _, st := range []step{
		{name: "delete needs all actions", method: "DELETE", path: repos + "/team/gone", user: "pusher", wantStatus: 403},
		{name: "delete", method: "DELETE", path: repos + "/team/gone", user: "owner", wantStatus: 204},
		{name: "gone", method: "GET", path: repos + "/team/gone", user: "owner", wantStatus: 404},
		{name: "its images", method: "GET", path: repos + "/team/gone/images", user: "owner", wantStatus: 404},
		{name: "its history", method: "GET", path: repos + "/team/gone/tags/v1/history", user: "owner", wantStatus: 404},
		{name: "its policy", method: "GET", path: repos + "/team/gone/lifecycle-policy", user: "owner", wantStatus: 404},
		{name: "delete again", method: "DELETE", path: repos + "/team/gone", user: "owner", wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "the other repository stays", method: "GET", path: repos + "/team/kept/images", user: "owner", wantStatus: 200, wantBody: []string{digestOf(t, keep)}},
	} {
		s.do(st)
	}
	if got := s.events(); !slices.Equal(got, []string{storage.EventRepositoryDeleted + " team/gone"}) {
		t.Errorf("events %v", got)
	}
	time.Sleep(2 * time.Millisecond)
	st, err := s.store.GC(ctx, &storage.GCOptions{Grace: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.BlobsDeleted < len(gone) {
		t.Errorf("GC reclaimed %d blobs, want at least %d", st.BlobsDeleted, len(gone))
	}
	for _, d := range gone {
		if _, err := s.store.StatBlob(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("blob %s of the deleted repository: %v", d, err)
		}
	}
	km, _ := keep.Manifest()
	for _, l := range km.Layers {
		if _, err := s.store.StatBlob(ctx, digest.Digest(l.Digest.String())); err != nil {
			t.Errorf("blob %s of the kept repository: %v", l.Digest, err)
		}
	}
}

// TestOtherRoutes drives the lifecycle-policy and token routes, served by
// their own packages, through the same server and document.
func TestOtherRoutes(t *testing.T) {
	backends(t, testOtherRoutes)
}

func testOtherRoutes(t *testing.T, metaURL string) {
	s := newServer(t, metaURL)
	s.createToken("reader", "repository:team/*:pull")
	s.createToken("manager", "registry:tokens:create,list,delete", "repository:team/*:pull")
	s.pushImage("team/app:v1", "", "")
	const policy = repos + "/team/app/lifecycle-policy"
	const doc = `{"rules":[{"rulePriority":1,"description":"old untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`
	for _, st := range []step{
		{name: "no policy", method: "GET", path: policy, user: "reader", wantStatus: 404, wantBody: []string{`"POLICY_UNKNOWN"`}},
		{name: "put policy", method: "PUT", path: policy, user: "admin", body: doc, wantStatus: 200},
		{name: "get policy", method: "GET", path: policy, user: "reader", wantStatus: 200, wantBody: []string{doc}},
		{name: "put as reader", method: "PUT", path: policy, user: "reader", body: doc, wantStatus: 403},
		{name: "anonymous", method: "GET", path: policy, wantStatus: 401},
		{name: "invalid policy", method: "PUT", path: policy, user: "admin", body: `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"sometimes"},"action":{"type":"expire"}}]}`, wantStatus: 400, invalid: true,
			wantBody: []string{`"POLICY_INVALID"`}},
		{name: "unknown policy field", method: "PUT", path: policy, user: "admin", body: `{"rules":[],"x":1}`, wantStatus: 400, invalid: true},
		{name: "preview", method: "POST", path: policy + "/preview", user: "reader", wantStatus: 200, wantBody: []string{`"policy":"repository"`}},
		{name: "preview a body", method: "POST", path: policy + "/preview", user: "reader", body: doc, wantStatus: 200, wantBody: []string{`"policy":"request"`}},
		{name: "policy methods", method: "PATCH", path: policy, user: "admin", body: `{}`, wantStatus: 405},
		{name: "preview methods", method: "GET", path: policy + "/preview", user: "admin", wantStatus: 405},
		{name: "delete policy", method: "DELETE", path: policy, user: "admin", wantStatus: 204},
		{name: "delete again", method: "DELETE", path: policy, user: "admin", wantStatus: 404},
		{name: "policy of an unknown repository", method: "PUT", path: repos + "/team/none/lifecycle-policy", user: "admin", body: doc, wantStatus: 404},
		{name: "policy bad name", method: "GET", path: repos + "/Team/lifecycle-policy", user: "admin", wantStatus: 400, invalid: true},
	} {
		s.do(st)
	}

	created := s.do(step{name: "create token", method: "POST", path: "/api/v1/tokens", user: "manager", wantStatus: 201,
		body: `{"name":"ci","scopes":["repository:team/app:pull"],"expiresIn":"30m"}`, wantHeader: map[string]string{"Location": "*"}})
	var tok struct{ ID string }
	if err := json.Unmarshal(created.body, &tok); err != nil || tok.ID == "" {
		t.Fatalf("created %s", created.body)
	}
	for _, st := range []step{
		{name: "list tokens", method: "GET", path: "/api/v1/tokens", user: "admin", wantStatus: 200, wantBody: []string{`"name":"ci"`}},
		{name: "list tokens, paginated", method: "GET", path: "/api/v1/tokens?n=1", user: "admin", wantStatus: 200, wantHeader: map[string]string{"Link": "*"}},
		{name: "get token", method: "GET", path: "/api/v1/tokens/" + tok.ID, user: "manager", wantStatus: 200, wantBody: []string{`"id":"` + tok.ID + `"`}},
		{name: "tokens anonymous", method: "GET", path: "/api/v1/tokens", wantStatus: 401, wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "tokens need the scope", method: "GET", path: "/api/v1/tokens", user: "reader", wantStatus: 403},
		{name: "beyond the manager's scopes", method: "POST", path: "/api/v1/tokens", user: "manager", body: `{"name":"x","scopes":["repository:other/*:pull"]}`, wantStatus: 403},
		{name: "bad scope", method: "POST", path: "/api/v1/tokens", user: "admin", body: `{"name":"x","scopes":["nonsense"]}`, wantStatus: 400, wantBody: []string{`"INVALID_SCOPE"`}},
		{name: "unknown field", method: "POST", path: "/api/v1/tokens", user: "admin", body: `{"name":"x","scopes":["repository:a:pull"],"admin":true}`, wantStatus: 400, invalid: true},
		{name: "revoke", method: "DELETE", path: "/api/v1/tokens/" + tok.ID, user: "manager", wantStatus: 204},
		{name: "revoked tokens stay listed", method: "GET", path: "/api/v1/tokens/" + tok.ID, user: "admin", wantStatus: 200, wantBody: []string{`"revokedAt":`}},
		{name: "unknown token", method: "DELETE", path: "/api/v1/tokens/nope", user: "admin", wantStatus: 404},
		{name: "token methods", method: "PUT", path: "/api/v1/tokens", user: "admin", body: `{}`, wantStatus: 405},
	} {
		s.do(st)
	}
}
