package manage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/manage"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
)

// Example serves the management API beside the registry, sharing its
// authentication and policy, then creates a public repository as the
// admin and lists what an anonymous caller may see.
func Example() {
	ctx := context.Background()
	meta := memmeta.New()
	defer meta.Close()
	store, err := storage.Open(ctx, "mem://", meta, &storage.Options{DisableEncryption: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	reg, _ := store.Registry()

	authn := basic.New(basic.NewStatic("admin", "s3cret", auth.Identity{Admin: true}))
	h, err := registry.New(store, &registry.Options{Authenticator: authn, Authorizer: policy.New(reg)})
	if err != nil {
		log.Fatal(err)
	}
	mh, err := manage.New(store, h.Authorize, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(mh.Wrap(h)) // /api/v1/… here, /v2/… to the registry
	defer srv.Close()

	call := func(method, path, user, body string) (int, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, "s3cret")
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	status, _ := call("PUT", "/api/v1/repositories/team/site", "admin", `{"visibility":"public","description":"the web site"}`)
	fmt.Println("create:", status)
	status, _ = call("PUT", "/api/v1/repositories/team/secret", "admin", `{}`)
	fmt.Println("create:", status)
	status, body := call("GET", "/api/v1/repositories", "", "")
	var list manage.RepositoryList
	_ = json.Unmarshal(body, &list)
	for _, r := range list.Repositories {
		fmt.Println("anonymous sees:", status, r.Name, r.Visibility, r.Description)
	}
	status, body = call("PATCH", "/api/v1/repositories/team/site", "admin", `{"visibility":"bogus"}`)
	fmt.Println("patch:", status, string(body))
	// Output:
	// create: 201
	// create: 201
	// anonymous sees: 200 team/site public the web site
	// patch: 400 {"errors":[{"code":"BODY_INVALID","message":"visibility must be \"private\" or \"public\"","detail":{"field":"visibility"}}]}
}
