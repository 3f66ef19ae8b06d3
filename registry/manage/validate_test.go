package manage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registry/manage"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The document, loaded and validated once.
var (
	docOnce sync.Once
	doc     *openapi3.T
	docErr  error
	matches []pathMatcher
)

// pathMatcher matches escaped request paths to one of the document's
// path templates. {name} spans segments (repository names hold slashes);
// other parameters are one segment. Templates with more literal text are
// tried first, as the server reads routes off the end of the path.
type pathMatcher struct {
	template string
	re       *regexp.Regexp
	params   []string
	literal  int
}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, docErr = loader.LoadFromData(manage.OpenAPI())
		if docErr != nil {
			return
		}
		if docErr = doc.Validate(loader.Context); docErr != nil {
			return
		}
		for tmpl := range doc.Paths.Map() {
			m := pathMatcher{template: tmpl}
			var re strings.Builder
			re.WriteString("^")
			for _, seg := range strings.Split(strings.TrimPrefix(tmpl, "/"), "/") {
				re.WriteString("/")
				if p, ok := strings.CutPrefix(seg, "{"); ok {
					p = strings.TrimSuffix(p, "}")
					m.params = append(m.params, p)
					switch p {
					case "name":
						re.WriteString("(.+)")
					case "digest":
						// Digests hold a colon; names never do.
						re.WriteString("([^/]*:[^/]*)")
					default:
						re.WriteString("([^/]+)")
					}
					continue
				}
				m.literal += len(seg) + 1
				re.WriteString(regexp.QuoteMeta(seg))
			}
			re.WriteString("$")
			m.re = regexp.MustCompile(re.String())
			matches = append(matches, m)
		}
		sort.Slice(matches, func(i, j int) bool { return matches[i].literal > matches[j].literal })
	})
	if docErr != nil {
		t.Fatalf("the OpenAPI document: %v", docErr)
	}
	return doc
}

// findRoute returns the document's path item for the request and its path
// parameters (unescaped).
func findRoute(t *testing.T, r *http.Request) (string, *openapi3.PathItem, map[string]string) {
	t.Helper()
	loadDoc(t)
	p := r.URL.EscapedPath()
	for _, m := range matches {
		sub := m.re.FindStringSubmatch(p)
		if sub == nil {
			continue
		}
		params := map[string]string{}
		for i, name := range m.params {
			v, err := url.PathUnescape(sub[i+1])
			if err != nil {
				t.Fatalf("%s: bad escape", p)
			}
			params[name] = v
		}
		return m.template, doc.Paths.Value(m.template), params
	}
	return "", nil, nil
}

// step is one request and what must come back.
type step struct {
	name   string
	method string
	path   string
	// user is a label of server.creds; "" sends no credentials.
	user        string
	body        string
	contentType string // default application/json when there is a body
	wantStatus  int
	// wantBody must be contained in the response body.
	wantBody []string
	// wantHeader maps header names to wanted values ("*" for present).
	wantHeader map[string]string
	// invalid says the document itself rejects the request, as the
	// server does.
	invalid bool
}

// result is a response, its body read.
type result struct {
	*http.Response
	body []byte
}

// do sends the step's request, checks it and the response against the
// OpenAPI document and the step's expectations, and returns the response.
func (s *server) do(st step) result {
	t := s.t
	t.Helper()
	var body io.Reader
	if st.body != "" {
		body = strings.NewReader(st.body)
	}
	req, err := http.NewRequest(st.method, s.srv.URL+st.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if st.body != "" {
		ct := st.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if st.user != "" {
		c, ok := s.creds[st.user]
		if !ok {
			t.Fatalf("%s: no user %q", st.name, st.user)
		}
		req.SetBasicAuth(c[0], c[1])
	}
	checkRequest(t, st, req)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := result{resp, b}
	if resp.StatusCode != st.wantStatus {
		t.Errorf("%s: %s %s: status %d, want %d; body %s", st.name, st.method, st.path, resp.StatusCode, st.wantStatus, b)
		return res
	}
	for _, w := range st.wantBody {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s: body %s\ndoes not contain %s", st.name, b, w)
		}
	}
	for k, v := range st.wantHeader {
		got := resp.Header.Get(k)
		if v == "*" && got == "" || v != "*" && got != v {
			t.Errorf("%s: header %s = %q, want %q", st.name, k, got, v)
		}
	}
	checkResponse(t, st, req, res)
	return res
}

func validationInput(t *testing.T, st step, req *http.Request) (*openapi3filter.RequestValidationInput, *openapi3.PathItem) {
	t.Helper()
	tmpl, item, params := findRoute(t, req)
	if item == nil {
		t.Fatalf("%s: %s is not in the OpenAPI document", st.name, req.URL.Path)
	}
	op := item.GetOperation(st.method)
	if op == nil && st.method == http.MethodHead {
		op = item.Get
	}
	if op == nil {
		return nil, item
	}
	return &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: st.method, Operation: op},
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}, item
}

// checkRequest validates the request against the document: it must pass
// unless the step is marked invalid, and then it must fail. Query
// parameters the operation does not declare fail too.
func checkRequest(t *testing.T, st step, req *http.Request) {
	t.Helper()
	in, _ := validationInput(t, st, req)
	if in == nil {
		return // an undocumented method: the response must be a 405
	}
	clone := req.Clone(context.Background())
	clone.Body = io.NopCloser(strings.NewReader(st.body))
	in.Request = clone
	err := openapi3filter.ValidateRequest(context.Background(), in)
	if err == nil {
		for k := range req.URL.Query() {
			if in.Route.Operation.Parameters.GetByInAndName("query", k) == nil {
				err = fmt.Errorf("undocumented query parameter %q", k)
			}
		}
	}
	err = short(err)
	switch {
	case err != nil && !st.invalid:
		t.Errorf("%s: %s %s: the request does not match the OpenAPI document: %v", st.name, st.method, st.path, err)
	case err == nil && st.invalid:
		t.Errorf("%s: %s %s: the OpenAPI document accepts the request, which the server rejects", st.name, st.method, st.path)
	}
}

// checkResponse validates the response against the document: status,
// headers, content type and body. Undocumented statuses and fields fail.
func checkResponse(t *testing.T, st step, req *http.Request, res result) {
	t.Helper()
	in, item := validationInput(t, st, req)
	if in == nil {
		// A method the path does not document: a 405 naming exactly the
		// documented methods, with an error body.
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %s %s is not documented but answered %d", st.name, st.method, st.path, res.StatusCode)
		}
		var want []string
		for m := range item.Operations() {
			want = append(want, m)
		}
		var got []string
		for _, m := range strings.Split(res.Header.Get("Allow"), ",") {
			if m = strings.TrimSpace(m); m != "HEAD" {
				got = append(got, m)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Allow %q, documented methods %v", st.name, res.Header.Get("Allow"), want)
		}
		checkSchema(t, st.name, "Errors", res.body)
		return
	}
	resp := in.Route.Operation.Responses.Status(res.StatusCode)
	if resp != nil && resp.Value != nil && len(resp.Value.Content) == 0 && len(res.body) > 0 {
		t.Errorf("%s: status %d documents no body, got %s", st.name, res.StatusCode, res.body)
	}
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.body)),
		Options:                in.Options,
	})
	if err = short(err); err != nil {
		t.Errorf("%s: %s %s: the response (%d %.300s) does not match the OpenAPI document: %v", st.name, st.method, st.path, res.StatusCode, res.body, err)
	}
}

// checkSchema validates a JSON value against a component schema.
func checkSchema(t *testing.T, what, schema string, body []byte) {
	t.Helper()
	ref := loadDoc(t).Components.Schemas[schema]
	if ref == nil {
		t.Fatalf("no schema %s", schema)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: %s is not JSON: %v", what, body, err)
		return
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s: %s does not match schema %s: %v", what, body, schema, err)
	}
}

// checkClosed fails unless every object schema with properties within s
// refuses other properties (additionalProperties or
// unevaluatedProperties false).
func checkClosed(t *testing.T, where string, s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	t.Helper()
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	closed := func(b openapi3.BoolSchema) bool { return b.Has != nil && !*b.Has }
	if len(s.Properties) > 0 && !closed(s.AdditionalProperties) && !closed(s.UnevaluatedProperties) {
		t.Errorf("schema %s has properties but admits others", where)
	}
	for name, p := range s.Properties {
		checkClosed(t, where+"."+name, p.Value, seen)
	}
	if s.Items != nil {
		checkClosed(t, where+"[]", s.Items.Value, seen)
	}
	for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		for _, r := range list {
			checkClosed(t, where, r.Value, seen)
		}
	}
}

// short drops the schema dumps kin-openapi appends to its messages.
func short(err error) error {
	if err == nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(l, "Schema:") || strings.HasPrefix(l, "Value:") {
			break
		}
		lines = append(lines, l)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// TestValidatorRejectsDrift shows that the checks above can fail: an
// undocumented field, a missing one and an undocumented status are all
// caught.
func TestValidatorRejectsDrift(t *testing.T) {
	d := loadDoc(t)
	repo := map[string]any{"name": "team/app", "visibility": "private", "immutableTags": false, "immutableTagExclusions": []any{},
		"description": "", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
	schema := d.Components.Schemas["Repository"].Value
	if err := schema.VisitJSON(repo, openapi3.EnableJSONSchema2020()); err != nil {
		t.Fatalf("a valid repository: %v", err)
	}
	repo["owner"] = "me"
	if schema.VisitJSON(repo, openapi3.EnableJSONSchema2020()) == nil {
		t.Error("an undocumented field passed")
	}
	delete(repo, "owner")
	delete(repo, "visibility")
	if schema.VisitJSON(repo, openapi3.EnableJSONSchema2020()) == nil {
		t.Error("a missing field passed")
	}
	req, _ := http.NewRequest("GET", "/api/v1/repositories/team/app", nil)
	st := step{name: "drift", method: "GET"}
	in, _ := validationInput(t, st, req)
	for status, ok := range map[int]bool{200: true, 418: false, 409: false} {
		body := `{"errors":[{"code":"UNKNOWN","message":"x"}]}`
		if status == 200 {
			b, _ := json.Marshal(map[string]any{"name": "team/app", "visibility": "private", "immutableTags": false, "immutableTagExclusions": []any{},
				"description": "", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"})
			body = string(b)
		}
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Options: in.Options,
		})
		if (err == nil) != ok {
			t.Errorf("status %d: %v", status, err)
		}
	}
}
