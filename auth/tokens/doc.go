// Package tokens manages scoped registry tokens: credentials for people and
// CI (robot accounts) that log in with HTTP Basic, as a generated user name
// and secret, and may do only what their scopes allow until they expire or
// are revoked.
//
// A [Manager] creates, lists and revokes tokens in a driver.Tokens store
// and, as a basic.Verifier, checks their credentials:
//
//	toks, _ := tokens.New(reg, nil)                 // reg: the metadata backend's driver.Registry
//	authn := basic.New(basic.NewStatic("admin", pw, auth.Identity{Admin: true}), toks)
//	api, _ := tokens.NewAPI(toks, authn, authz, nil) // mount at /api/v1/tokens and /api/v1/tokens/
//
// # Scopes
//
// A token's scopes are scope strings whose names are auth.Match patterns:
//
//	repository:<pattern>:pull,push,delete   (or "*" for all three)
//	registry:catalog:*                      list the catalog
//	registry:tokens:create,list,delete      manage tokens (see below)
//
// The resulting auth.Identity has Subject set to the token's user name and
// Scopes set to the token's scopes, so that auth/policy grants exactly what
// they cover (and public pulls). Its ExpiresAt is the token's expiry.
//
// # Management API
//
// [NewAPI] serves
//
//	POST   /api/v1/tokens       {"name","scopes":[…],"expiresIn":"720h"}
//	                            → 201 {"id","name","username","secret","scopes","createdBy","createdAt","expiresAt"}
//	GET    /api/v1/tokens       ?n=100&last=ID → 200 {"tokens":[…]} (+ Link to the next page)
//	GET    /api/v1/tokens/{id}  → 200 the token
//	DELETE /api/v1/tokens/{id}  → 204 (revokes; revoked tokens stay listed)
//
// expiresIn is a Go duration ("720h", "90m") or a number of days ("30d");
// it defaults to Options.DefaultExpiry (90 days) and may not exceed
// Options.MaxExpiry (one year): every token expires. The secret appears only
// in the creation response. Errors are JSON
// {"errors":[{"code","message"}]} (openapi.yaml in this directory describes
// every shape): 400 INVALID_REQUEST or INVALID_SCOPE
// (naming the scope), 401 UNAUTHORIZED, 403 DENIED, 404 NOT_FOUND, 405
// METHOD_NOT_ALLOWED, 429 TOO_MANY_REQUESTS, 500 INTERNAL_ERROR.
//
// Each route asks the Authorizer for the scope "registry:tokens:<action>"
// with action create, list or delete (reading one token is list). With
// auth/policy, the bootstrap admin holds them all, and a token created with
// "registry:tokens:create,list,delete" holds them too. Such a delegated
// manager (any identity other than an admin without Scopes):
//
//   - may only create tokens whose every scope it holds itself: a literal
//     name must be covered by one of its patterns, a pattern must equal one
//     of its patterns or lie under one of its "prefix/**" patterns, and
//     every action must be among that scope's actions;
//   - may not create a token that outlives its own credentials;
//   - sees and revokes only the tokens it created.
//
// Revoking a token does not revoke the tokens it created: list them by
// their createdBy (the revoked token's user name) and revoke them too.
//
// # Errors
//
// Verify returns auth.ErrUnauthenticated for unknown users, wrong secrets
// and revoked or expired tokens alike; backend failures are returned
// wrapped, and never mention credentials. Manager methods return
// *auth.ScopeError for bad scopes and errors matching driver.ErrNotFound,
// auth.ErrUnauthenticated and ErrPermission as their names say.
//
// # Concurrency
//
// A Manager and the API handler are safe for concurrent use.
//
// # Security
//
// Secrets are 256-bit random values (prefixed "berth_" so that secret
// scanners can recognise them), shown once and stored only as argon2id
// hashes with a per-token 16-byte salt (RFC 9106 / OWASP parameters:
// 19 MiB, 2 passes, 1 lane), encoded as PHC strings so parameters can be
// raised later. Verification compares in constant time and, for unknown
// user names, hashes anyway so that timing does not reveal which tokens
// exist. At most MaxConcurrentHashes (4) argon2id computations run at once,
// bounding their memory to 76 MiB however many logins arrive; the others
// wait (a caller whose context ends first gets its error). Because an
// argon2id check costs tens of milliseconds, a successful
// check is remembered for CacheTTL (1 minute) as a SHA-256 of the secret in
// memory, so that clients using Basic on every request stay fast; the token
// record (revocation, expiry) is still read on every request. Revocation
// and expiry are checked after the secret, and all failures look the same.
// Creation and revocation append "dev.berth.token.created" and
// "dev.berth.token.revoked" events (never containing the secret) to the
// outbox in the same transaction.
package tokens
