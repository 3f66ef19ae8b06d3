package auth

import (
	"net/http"
	"strings"
)

// ByScheme returns an Authenticator that dispatches on the scheme of the
// request's Authorization header: no header is Anonymous, "Basic" goes to
// basic and "Bearer" to bearer (case-insensitively), and any other scheme,
// or one whose authenticator is nil, is ErrUnauthenticated.
func ByScheme(basic, bearer Authenticator) Authenticator {
	return schemes{basic: basic, bearer: bearer}
}

type schemes struct{ basic, bearer Authenticator }

func (s schemes) Authenticate(r *http.Request) (*Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Anonymous, nil
	}
	scheme, _, _ := strings.Cut(h, " ")
	var a Authenticator
	switch {
	case strings.EqualFold(scheme, "Basic"):
		a = s.basic
	case strings.EqualFold(scheme, "Bearer"):
		a = s.bearer
	}
	if a == nil {
		return nil, ErrUnauthenticated
	}
	return a.Authenticate(r)
}

// BearerToken returns the token of a "Bearer" Authorization header, or
// ErrNoCredentials when the request has none.
func BearerToken(r *http.Request) (string, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoCredentials
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrNoCredentials
	}
	return tok, nil
}

// AuthenticatorFunc adapts a function to the Authenticator interface.
type AuthenticatorFunc func(r *http.Request) (*Identity, error)

// Authenticate implements Authenticator by calling f.
func (f AuthenticatorFunc) Authenticate(r *http.Request) (*Identity, error) { return f(r) }
