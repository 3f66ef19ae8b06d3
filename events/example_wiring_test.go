package events_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/webhook"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"gocloud.dev/secrets/localsecrets"

	_ "github.com/berth-dev/berth/events/natsevents" // nats:// topics
)

// Example_server wires every piece into a registry server: the access
// log, metrics and rate limits around the registry handler, the metrics
// endpoint on an internal listener, and a relay publishing the outbox to
// a topic and a webhook.
func Example_server() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	// The registry, as examples/registryd builds it.
	key, _ := localsecrets.NewRandomKey()
	meta := memmeta.New()
	store, err := storage.Open(ctx, "mem://", meta, &storage.Options{Keeper: localsecrets.NewKeeper(key)})
	if err != nil {
		logger.Error("open store", "err", err)
		return
	}
	defer store.Close()
	reg, _ := registry.New(store, &registry.Options{Logger: logger})

	// Access log, metrics, rate limits: three wrappers.
	accessLog, _ := events.NewAccessLog(&events.AccessLogOptions{Logger: logger})
	metrics, _ := events.NewMetrics(nil)
	limiter, _ := events.NewMemoryLimiter(&events.MemoryLimiterOptions{
		Address:  events.Limit{Rate: 50, Burst: 200},
		Identity: events.Limit{Rate: 100, Burst: 400},
	})
	limits, _ := events.NewRateLimit(limiter, &events.RateLimitOptions{Metrics: metrics, Logger: logger})
	public := &http.Server{Addr: "127.0.0.1:5000", Handler: accessLog.Middleware(metrics.Middleware(limits.Middleware(reg)))}
	internal := &http.Server{Addr: "127.0.0.1:9090", Handler: metrics.Handler()}

	// Events: the outbox to a topic (--events-url) and a webhook.
	outbox, _ := store.Registry()
	pub, err := events.OpenPublisher(ctx, "mem://berth-events") // or "nats://berth.events" with NATS_SERVER_URL set
	if err != nil {
		logger.Error("open events topic", "err", err)
		return
	}
	defer pub.Close(context.Background())
	hook, err := webhook.New("https://hooks.example.com/berth", &webhook.Options{
		Secret: []byte(os.Getenv("BERTH_WEBHOOK_SECRET")),
		Allow:  webhook.AllowHosts("hooks.example.com"),
		Logger: logger,
	})
	if err == nil {
		defer hook.Close()
		pub.Add(hook)
	}
	relay, _ := events.NewRelay(outbox, pub, &events.RelayOptions{Source: "/registry.example.com", Logger: logger})
	go func() { _ = relay.Run(ctx) }()

	_, _ = public, internal // ListenAndServe on each, Shutdown on exit.
}
