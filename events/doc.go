// Package events publishes what happens in a Berth registry and records
// who asked for it: CloudEvents for every state change, relayed from the
// storage outbox to gocloud.dev/pubsub topics and webhooks; a
// hash-chained access log with one record per request; Prometheus
// metrics; and rate limits. Each piece wraps the registry's http.Handler
// or runs beside it, so a server wires them in a few lines:
//
//	accessLog, _ := events.NewAccessLog(&events.AccessLogOptions{Logger: logger})
//	metrics, _ := events.NewMetrics(nil)
//	limiter, _ := events.NewMemoryLimiter(&events.MemoryLimiterOptions{
//		Address:  events.Limit{Rate: 50, Burst: 200},
//		Identity: events.Limit{Rate: 100, Burst: 400},
//	})
//	limits, _ := events.NewRateLimit(limiter, &events.RateLimitOptions{Metrics: metrics})
//	authn = events.ObserveAuthenticator(authn, limits) // identities recorded and limited
//	authz = events.ObserveAuthorizer(authz)            // decisions recorded
//	registryHandler, _ := registry.New(store, &registry.Options{Authenticator: authn, Authorizer: authz})
//	handler := accessLog.Middleware(metrics.Middleware(limits.Middleware(registryHandler)))
//
//	mux := http.NewServeMux()
//	mux.Handle("/", handler)
//	internal.Handle("/metrics", metrics.Handler()) // an internal listener
//
//	pub, _ := events.OpenPublisher(ctx, "nats://berth.events")
//	relay, _ := events.NewRelay(outbox, pub, nil) // outbox: store.Registry()
//	go relay.Run(ctx)
//
// # Events
//
// The storage layer appends an outbox entry (driver.Event) in the same
// transaction as every state change. Relay claims entries with a lease,
// turns each into an Event (CloudEvents 1.0, structured mode: specversion,
// id, source, type, subject, time, datacontenttype, data) and hands it to
// a Sender: a TopicSender (any gocloud.dev/pubsub URL: mem://, nats:// with
// events/natsevents, awssnssqs, gcppubsub, …), a webhook.Sender, or a
// Publisher fanning out to several. An entry is acknowledged only after
// every sender accepted it; until then it stays in the outbox, so a
// broker outage, a crash or a restart delays events but loses none.
// Delivery is at least once: consumers deduplicate on (source, id). The
// Type constants list every event type.
//
// # Access log
//
// AccessLog.Middleware writes one AccessRecord per request: request ID,
// identity, client address, method, route template, repository,
// reference, authorization decision, status, bytes in and out, duration.
// Records go through log/slog (or, cheaper, straight to an io.Writer) and,
// optionally, to a copy outside the service fixed at start-up
// (TopicAccessWriter, or BucketAccessWriter for a write-once bucket
// prefix). Each record carries the SHA-256 of the previous one's
// canonical JSON; VerifyAccessLog and VerifyBucketAccessLog report
// deleted, reordered and altered records.
//
// What only the server knows, who made the request and what was decided,
// reaches the record through the request's Record (RecordFromContext).
// ObserveAuthenticator and ObserveAuthorizer fill it in for any
// auth.Authenticator and auth.Authorizer, whatever the credentials (HTTP
// Basic, a Bearer JWT, a registry token), and registry.New applies them
// to its own, so every request through registry.Handler is recorded; a
// server passes the same wrappers to its other handlers (the token
// service, management APIs). Other handlers may set it themselves:
//
//	if rec := events.RecordFromContext(r.Context()); rec != nil {
//		rec.SetIdentity(identity.Subject)
//		rec.SetDecision(events.DecisionAllow)
//	}
//
// A 401, 403 or 429 response states the decision (unauthenticated, or
// deny for known credentials; deny; rate-limited) whatever was recorded
// before; without a recorded identity, the user name of HTTP Basic
// credentials the handler accepted is used.
//
// # Metrics
//
// Metrics.Middleware counts and times requests by route template (never
// by repository, so series stay few), method and status, and counts body
// bytes; other packages report storage bytes, upload sessions, the scan
// queue, scan durations and reclaimed bytes through the Observer
// interface. Metrics.Handler serves the Prometheus text format.
//
// # Rate limits
//
// RateLimit.Middleware applies a Limiter per client address (and per
// identity when RateLimitOptions.Identity can tell); identities are
// limited where they are verified, by ObserveAuthenticator, once per
// request, with the identity's own limit (auth.Identity.RateLimit: the
// rate stored with a registry token, carried in the token service's JWTs)
// when the Limiter is a LimitAllower. Refused requests get 429,
// Retry-After and the TOOMANYREQUESTS error body. MemoryLimiter keeps
// token buckets in bounded memory in one process; SharedLimiter keeps
// them in a store the nodes of a cluster share (driver.RateLimits: the
// SQL metadata store, PostgreSQL for a cluster, updated with one atomic
// statement per decision), and remembers refusals locally until they
// expire.
//
// # URLs
//
// OpenPublisher and OpenTopic take gocloud.dev/pubsub topic URLs through
// pubsub.DefaultURLMux; import the driver of each scheme (mempubsub is
// always there through gocloud; events/natsevents registers nats://).
// Errors show URLs without credentials or query.
//
// # Cost
//
// The middlewares add no goroutine and a few small allocations per
// request: one Record holding the request's context, writer and request
// ID; the record's fields are encoded before the log's lock is taken, and
// the lock covers only the chain (sequence, SHA-256) and the write.
// BenchmarkMiddleware and BenchmarkManifestGETRealServer measure them;
// TestMiddlewareOverhead (BERTH_OVERHEAD=1) compares a server's CPU time
// per manifest GET with and without them in one run.
//
// # Security
//
// Records never contain request headers (so no Authorization or
// cookies); query parameters that carry secrets (token, password,
// signature, X-Amz-Signature, … and AccessLogOptions.RedactParams) are
// replaced with REDACTED. The client address is the connection's peer:
// forwarding headers are trusted only through a ClientAddr function the
// server supplies. By default the access log fails closed: a response is
// held back until its record is written and replaced with 503 if it cannot
// be, and later requests are refused until the log works again
// (AccessLogOptions.FailOpen changes that). The hash chain shows edits
// within a log; against deletion of its tail or a wholesale rewrite, keep
// the head (AccessLog.Head) or a write-once copy outside the service.
// Rate-limit identities must come from verified credentials. Metrics
// reveal activity: serve them on an internal listener or behind
// authentication. Webhook destinations must pass the caller's allowlist
// and are signed with HMAC-SHA256 (see events/webhook).
//
// # Concurrency
//
// AccessLog, Metrics, RateLimit, MemoryLimiter, SharedLimiter, Publisher
// and TopicSender are safe for concurrent use. Access records are chained
// and written in sequence order under the log's lock (a slow external
// copy slows every request: the write has a timeout,
// AccessLogOptions.WriteTimeout); records written to Output without an
// external copy are group-committed: requests that finish together share
// one Write, and each waits for its own.
// A Relay's RelayOnce calls are serialized; several relays, in one
// process or many, may share an outbox, since claims are disjoint. A
// Record belongs to one request and is set from the goroutine serving it.
package events
