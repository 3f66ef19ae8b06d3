package bearer

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/auth"
)

type fixed map[string]*auth.Identity

func (f fixed) VerifyToken(_ context.Context, tok string) (*auth.Identity, error) {
	if tok == "boom" {
		return nil, errors.New("backend down")
	}
	if id, ok := f[tok]; ok {
		return id, nil
	}
	return nil, auth.ErrUnauthenticated
}

func TestAuthenticate(t *testing.T) {
	a := New(fixed{"a": {Subject: "alice"}}, fixed{"b": {Subject: "bob"}})
	r := httptest.NewRequest("GET", "/v2/", nil)
	if id, err := a.Authenticate(r); err != nil || !id.IsAnonymous() {
		t.Fatalf("none: %v %v", id, err)
	}
	for tok, want := range map[string]string{"a": "alice", "b": "bob"} {
		r.Header.Set("Authorization", "Bearer "+tok)
		if id, err := a.Authenticate(r); err != nil || id.Subject != want {
			t.Errorf("%s: %v %v", tok, id, err)
		}
	}
	for _, h := range []string{"Bearer c", "Bearer ", "Basic YTpi", "Bearer " + strings.Repeat("x", MaxTokenBytes+1)} {
		r.Header.Set("Authorization", h)
		if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%.20q: %v", h, err)
		}
	}
	r.Header.Set("Authorization", "Bearer boom")
	if _, err := a.Authenticate(r); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("backend error: %v", err)
	}
	if _, err := New().VerifyToken(context.Background(), "a"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("no verifiers: %v", err)
	}
}
