// Package token implements the Docker token flow: a token service that
// issues short-lived signed JWTs for the scopes a client asks for, and the
// verifier the registry uses to accept them as Bearer tokens.
//
// The registry answers unauthenticated requests with
// "WWW-Authenticate: Bearer realm=<token endpoint>,service=…,scope=…"; the
// client asks the realm for a token (with its Basic credentials, or
// anonymously) and retries with "Authorization: Bearer <jwt>".
//
// Wiring (one line each):
//
//	key, _ := token.LoadOrCreateKeyFile(filepath.Join(dataDir, "token-key.pem"))
//	svc, _ := token.NewService(key, limiter.Wrap(basic.New(admin, toks)), authz, &token.Options{Service: "berth", Revalidator: token.Revalidators{admin, toks}})
//	mux.Handle("/token", svc)                                   // registry.Options{Realm: "https://host/token", Service: "berth"}
//	// registry.Options.Authenticator (see the auth package doc):
//	authn := limiter.Wrap(auth.WithUploadSessions(auth.ByScheme(basic.New(admin, toks), bearer.New(svc.Verifier())), lookup))
//
// # Requests
//
//	GET  /token?service=berth&scope=repository:team/app:pull,push&scope=…[&offline_token=true]
//	POST /token  (application/x-www-form-urlencoded)
//	     grant_type=password&username=…&password=…&service=…&scope=… [&access_type=offline]
//	     grant_type=refresh_token&refresh_token=…&service=…&scope=…
//
// Each scope parameter may hold several space-separated scopes (at most
// 32 in all); repository names must be valid repository names. The answer
// is {"token","access_token","expires_in","issued_at"} plus
// "refresh_token" when asked for (offline_token=true, access_type=offline)
// and enabled, and "scope" (the granted scopes) for POST. Errors are JSON
// {"errors":[{"code","message"}]}, with the OAuth2 "error" and
// "error_description" fields added for POST: 400 for a bad request, an
// unknown service or a bad scope (INVALID_SCOPE naming it), 401 with a
// Basic challenge for wrong credentials, 429 with Retry-After while
// throttled.
//
// # Tokens
//
// Access tokens are JWS compact JWTs with the header {"alg","kid","typ":"JWT"}
// and the claims iss, sub (empty for anonymous callers), aud (the service),
// exp, nbf, iat, jti and access, the Docker token specification's list of
// granted scopes [{"type","name","actions"}]. The granted actions are
// exactly what the Authorizer grants the caller among the requested ones:
// anonymous callers get pull on public repositories and nothing else, and a
// request for something not granted yields a token without it (the
// registry then answers 403 or 401), never an error. Refresh tokens carry
// "use":"refresh" and no access claim; an access token is never accepted as
// a refresh token nor the reverse.
//
// The Verifier turns an access token into an auth.Identity whose Scopes
// are exactly the access claim (non-nil, so auth/policy grants exactly
// those, plus public pulls) and whose ExpiresAt is exp.
//
// # Scale-out
//
// Registry nodes are stateless: every node must verify every node's tokens.
// Give all nodes the same key (the same PEM, from a shared secret store, via
// ParseKeyPEM), or give each verifier the public keys of all nodes
// (NewVerifier takes several); to rotate, verify with the old and new keys
// while signing with the new one for at least the token and refresh
// lifetimes. Nothing else is shared: refresh revalidation reads the token
// store, and the upload grace reads the upload session's stored record.
//
// # Errors
//
// VerifyToken returns errors matching auth.ErrUnauthenticated, each naming
// the reason (wrong issuer, wrong audience, expired, bad signature, unknown
// key ID, algorithm not allowed) but never the token.
//
// # Concurrency
//
// A Service and a Verifier are safe for concurrent use.
//
// # Security
//
//   - Signatures: ES256 (ECDSA P-256, the default for generated keys) or
//     EdDSA (Ed25519); the verifier accepts only the algorithms of its
//     configured keys, so "none", HMAC and RSA tokens, key confusion and
//     unknown kids are refused before any claim is read. The kid is the
//     RFC 7638 thumbprint of the public key; several keys may be configured
//     for rotation. Key files are PKCS #8 PEM, created 0600, and refused
//     when readable by others.
//   - Lifetimes: access tokens live 5 minutes by default (at most an hour)
//     and never outlive the credentials they were issued for (a registry
//     token's expiry). exp and iat are required; 30 s of clock skew is
//     tolerated on exp, nbf and iat.
//   - Verification cache: a Verifier remembers the tokens it verified, by
//     their SHA-256, until they expire (4 MiB of them by default, least
//     recently used first out; VerifierOptions.CacheBytes), so that a
//     client sending the same token on every request pays for one
//     signature check, not one per request. Only the checks that cannot
//     change are skipped on a hit (signature, key, algorithm, issuer,
//     audience); expiry, not-before, issued-at and the upload grace are
//     checked on every request. A token that failed verification is never
//     cached, and only the very same bytes hit an entry.
//   - Long pushes: a token that expires during an upload is still accepted,
//     for at most UploadGrace (1 hour) past its expiry, for requests the
//     registry marks with auth.WithUploadGrace as continuing an upload
//     session that started while the token was valid, and then only for
//     pull and push on that session's repository. Wrapping the registry's
//     authenticator with auth.WithUploadSessions does the marking (only for
//     GET, PATCH, PUT and DELETE on /v2/<name>/blobs/uploads/<id> whose
//     stored session belongs to <name>, with its stored start time, and
//     only for credentials of the subject that started the session);
//     without the mark no expired token is accepted.
//   - Refresh tokens (24 hours by default, never past the credentials'
//     expiry) are honoured only with a Revalidator, which re-checks on every
//     refresh that the subject still exists and is not revoked or expired;
//     the granted scopes are re-decided by the Authorizer each time.
//     Revoking a registry token stops its refresh tokens at once; changing
//     the admin password does not stop the admin's until they expire (24
//     hours at most); replacing the signing key stops all of them.
//   - Revocation of access tokens: with a Revalidator, the Verifier also
//     re-checks the subject of the access tokens it accepts (not anonymous
//     ones) and remembers the answer for RevalidateEvery (5 seconds by
//     default, at most 1 minute): revoking or expiring a registry token
//     stops the access tokens issued for it within that bound rather than
//     at their expiry (5 minutes), at one Revalidate call (a database read
//     for registry tokens) per subject per interval, not per request.
//   - Credentials and tokens never appear in errors or logs; responses
//     carry Cache-Control: no-store. Wrap the Basic authenticator with
//     auth/throttle so that password guessing through the token endpoint is
//     throttled like any other login.
package token
