package lifecycle_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/storage/driver"
)

// testAuthorize allows "admin" everything and "reader" reads; anonymous
// requests are unauthenticated.
func testAuthorize(r *http.Request, repo string, write bool) error {
	switch r.Header.Get("X-User") {
	case "":
		return &errcode.Error{Code: errcode.Unauthenticated, Msg: "anonymous"}
	case "admin":
		return nil
	case "reader":
		if !write {
			return nil
		}
	case "broken":
		return &errcode.Error{Code: errcode.Internal, Msg: "authorizer down"}
	}
	return &errcode.Error{Code: errcode.PermissionDenied, Msg: "denied"}
}

const ecrDoc = `{
  "rules": [
    {
      "rulePriority": 1,
      "description": "Expire untagged images older than 7 days",
      "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
      "action": {"type": "expire"}
    }
  ]
}`

func newTestServer(t *testing.T) (*fixture, *httptest.Server) {
	f := newFixture(t)
	f.repo("team/app")
	f.repo("x/lifecycle-policy")
	f.push("team/app", "old", 30*day, nil, nil)
	f.push("team/app", "new", 1*day, []string{"v1"}, nil)
	r, err := lifecycle.NewRunner(f.meta, f.store, &lifecycle.Options{Logger: quiet, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	h, err := lifecycle.NewHandler(r, testAuthorize, &lifecycle.HandlerOptions{
		Logger:   quiet,
		Identity: func(r *http.Request) string { return r.Header.Get("X-User") },
	})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(h.Wrap(next))
	t.Cleanup(srv.Close)
	return f, srv
}

type step struct {
	name       string
	method     string
	path       string
	user       string
	body       string
	wantStatus int
	// wantBody, when set, must be contained in the response body.
	wantBody []string
	// wantHeader maps header names to values.
	wantHeader map[string]string
}

func TestHandler(t *testing.T) {
	f, srv := newTestServer(t)
	const policy = "/api/v1/repositories/team/app/lifecycle-policy"
	const preview = policy + "/preview"
	steps := []step{
		{name: "no policy yet", method: "GET", path: policy, user: "reader", wantStatus: 404, wantBody: []string{`"code":"POLICY_UNKNOWN"`}},
		{name: "anonymous", method: "GET", path: policy, wantStatus: 401, wantBody: []string{`"UNAUTHORIZED"`},
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="berth"`}},
		{name: "reader cannot write", method: "PUT", path: policy, user: "reader", body: ecrDoc, wantStatus: 403, wantBody: []string{`"DENIED"`}},
		{name: "authorizer failure", method: "GET", path: policy, user: "broken", wantStatus: 500, wantBody: []string{`"UNKNOWN"`}},
		{name: "stranger", method: "GET", path: policy, user: "eve", wantStatus: 403},
		{name: "put ECR JSON as is", method: "PUT", path: policy, user: "admin", body: ecrDoc, wantStatus: 200, wantBody: []string{ecrDoc}},
		{name: "get it back verbatim", method: "GET", path: policy, user: "reader", wantStatus: 200, wantBody: []string{ecrDoc},
			wantHeader: map[string]string{"Content-Type": "application/json", "Last-Modified": "Sun, 01 Mar 2026 12:00:00 GMT"}},
		{name: "invalid policy names the fields", method: "PUT", path: policy, user: "admin",
			body:       `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"purge"}}]}`,
			wantStatus: 400, wantBody: []string{
				`{"code":"POLICY_INVALID","message":"rules[0].selection.countNumber: must be a positive integer","detail":{"field":"rules[0].selection.countNumber"}}`,
			}},
		{name: "semantic errors", method: "PUT", path: policy, user: "admin",
			body:       `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"purge"}}]}`,
			wantStatus: 400, wantBody: []string{
				`"message":"rules[1].rulePriority: 1 is already the priority of rules[0]; priorities must be unique","detail":{"field":"rules[1].rulePriority"}`,
				`"message":"rules[1].action.type: must be \"expire\" or \"keep\", not \"purge\""`,
			}},
		{name: "not JSON", method: "PUT", path: policy, user: "admin", body: `rules:`, wantStatus: 400, wantBody: []string{`not valid JSON`}},
		{name: "too large", method: "PUT", path: policy, user: "admin", body: strings.Repeat(" ", lifecycle.MaxDocumentSize+1), wantStatus: 413},
		{name: "the stored policy is unchanged", method: "GET", path: policy, user: "admin", wantStatus: 200, wantBody: []string{ecrDoc}},
		{name: "preview the stored policy", method: "POST", path: preview, user: "reader", wantStatus: 200, wantBody: []string{
			`"repository":"team/app"`, `"evaluatedAt":"2026-03-01T12:00:00Z"`, `"policy":"repository"`,
			`"action":"expire","rule":1,"reason":"rule 1: untagged and pushed 30 days ago (\u003e 7)"`,
			`"tags":["v1"]`, `"reason":"no rule selects it"`,
		}},
		{name: "preview a policy from the body", method: "POST", path: preview, user: "reader",
			body:       `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}`,
			wantStatus: 200, wantBody: []string{`"policy":"request"`, `"expire":[]`}},
		{name: "preview an invalid policy", method: "POST", path: preview, user: "reader", body: `{"rules":[]}`, wantStatus: 400, wantBody: []string{`"rules: must hold at least one rule"`}},
		{name: "preview needs POST", method: "GET", path: preview, user: "reader", wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}},
		{name: "policy methods", method: "PATCH", path: policy, user: "admin", wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "delete", method: "DELETE", path: policy, user: "admin", wantStatus: 204},
		{name: "delete again", method: "DELETE", path: policy, user: "admin", wantStatus: 404, wantBody: []string{`"POLICY_UNKNOWN"`}},
		{name: "preview without a policy", method: "POST", path: preview, user: "admin", wantStatus: 404, wantBody: []string{`"POLICY_UNKNOWN"`}},
		{name: "unknown repository", method: "PUT", path: "/api/v1/repositories/team/none/lifecycle-policy", user: "admin", body: ecrDoc, wantStatus: 404, wantBody: []string{`"NAME_UNKNOWN"`}},
		{name: "invalid name", method: "GET", path: "/api/v1/repositories/Team/App/lifecycle-policy", user: "admin", wantStatus: 400, wantBody: []string{`"NAME_INVALID"`}},
		{name: "a repository named like the route", method: "PUT", path: "/api/v1/repositories/x/lifecycle-policy/lifecycle-policy", user: "admin", body: ecrDoc, wantStatus: 200},
		{name: "its preview", method: "POST", path: "/api/v1/repositories/x/lifecycle-policy/lifecycle-policy/preview", user: "admin", wantStatus: 200, wantBody: []string{`"repository":"x/lifecycle-policy"`}},
		{name: "other routes go to the wrapped handler", method: "GET", path: "/api/v1/repositories/team/app/images", user: "admin", wantStatus: 418},
		{name: "v2 too", method: "GET", path: "/v2/", wantStatus: 418},
	}
	for _, s := range steps {
		req, err := http.NewRequest(s.method, srv.URL+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.user != "" {
			req.Header.Set("X-User", s.user)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.wantStatus {
			t.Errorf("%s: %s %s: status %d, want %d; body %s", s.name, s.method, s.path, resp.StatusCode, s.wantStatus, body)
			continue
		}
		for _, want := range s.wantBody {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s: body %s\ndoes not contain %s", s.name, body, want)
			}
		}
		for k, v := range s.wantHeader {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: header %s = %q, want %q", s.name, k, got, v)
			}
		}
		if resp.StatusCode >= 400 && resp.StatusCode != http.StatusTeapot {
			var e struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
				t.Errorf("%s: error body %s is not an error list", s.name, body)
			}
		}
	}

	// Policy changes are recorded with events naming who made them.
	var updated, deleted int
	evs, _ := f.meta.ClaimEvents(f.ctx, f.clock.Now(), 0, 1000)
	for _, e := range evs {
		switch e.Type {
		case lifecycle.EventPolicyUpdated:
			updated++
			if e.Subject == "team/app" && !strings.Contains(string(e.Data), `"by":"admin"`) {
				t.Errorf("event data %s", e.Data)
			}
		case lifecycle.EventPolicyDeleted:
			deleted++
		}
	}
	if updated != 2 || deleted != 1 {
		t.Errorf("%d updated and %d deleted events, want 2 and 1", updated, deleted)
	}
	p, err := f.meta.GetPolicy(f.ctx, "x/lifecycle-policy")
	if err != nil || p.UpdatedBy != "admin" || string(p.Document) != ecrDoc {
		t.Errorf("stored policy %+v, %v", p, err)
	}
}

func TestHandlerStoredPolicyInvalid(t *testing.T) {
	f, srv := newTestServer(t)
	// A document stored by other means that does not parse.
	if err := f.meta.PutPolicy(f.ctx, &driver.Policy{Repository: "team/app", Document: []byte(`{"rules":[]}`)}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/repositories/team/app/lifecycle-policy/preview", nil)
	req.Header.Set("X-User", "admin")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("status %d, want 409", resp.StatusCode)
	}
}

func TestNewHandlerArguments(t *testing.T) {
	f := newFixture(t)
	r, _ := lifecycle.NewRunner(f.meta, f.store, nil)
	if _, err := lifecycle.NewHandler(r, nil, nil); err == nil {
		t.Error("a handler without an authorizer was created")
	}
	if _, err := lifecycle.NewHandler(nil, testAuthorize, nil); err == nil {
		t.Error("a handler without a runner was created")
	}
	h, err := lifecycle.NewHandler(r, testAuthorize, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/repositories/team/app/tags", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unrelated path: %d", rec.Code)
	}
}
