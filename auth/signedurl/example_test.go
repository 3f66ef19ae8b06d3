package signedurl_test

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/berth-dev/berth/auth/signedurl"
	"github.com/opencontainers/go-digest"
)

func Example() {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// Keys oldest first: "2026-04" still verifies, "2026-05" signs.
	s, err := signedurl.NewSigner([]signedurl.Key{
		{ID: "2026-04", Secret: bytes.Repeat([]byte("a"), 32)},
		{ID: "2026-05", Secret: bytes.Repeat([]byte("b"), 32)},
	}, &signedurl.Options{Now: clock})
	if err != nil {
		panic(err)
	}
	d := digest.FromString("layer")
	p, err := s.Sign("team/app", signedurl.Blob, d, now.Add(15*time.Minute))
	if err != nil {
		panic(err)
	}
	id, err := s.Verify(httptest.NewRequest("GET", p, nil))
	fmt.Println(id.Subject, id.Scopes[0], id.ExpiresAt.UTC().Format(time.RFC3339), err)
	_, err = s.Verify(httptest.NewRequest("DELETE", p, nil))
	fmt.Println(err)
	// Output:
	// signed-url repository:team/app:pull 2026-05-01T12:15:00Z <nil>
	// signedurl: method DELETE is not allowed with a signed URL: auth: invalid credentials
}
