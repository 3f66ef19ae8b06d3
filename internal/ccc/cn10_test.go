package ccc_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hookServer is a webhook receiver on a loopback address that counts the
// connections and deliveries it gets.
type hookServer struct {
	addr   string
	conns  atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func newHookServer(t *testing.T, ip string) *hookServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookServer{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			h.conns.Add(1)
		}
	}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func (h *hookServer) deliveries() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

const webhookSecret = "BERTH_WEBHOOK_SECRET=ccc-webhook-secret-0123456789"

func TestCCC_Core_CN10_AR01_C10_TR01_EgressAllowlist(t *testing.T) {
	a := assess(t)
	t.Parallel()
	if !hasFlag(t, "egress-allow") {
		a.Gap("registryd has no egress allowlist: nothing restricts where its outbound connections go")
		return
	}
	allowed := newHookServer(t, "127.0.0.5")
	outside := newHookServer(t, "127.0.0.6")
	_, allowedPort, _ := net.SplitHostPort(allowed.addr)

	// (a) A destination outside the allowlist is refused at start-up.
	msg := mustRefuseEnv(t, a, "webhook outside the allowlist",
		[]string{"--egress-allow", "127.0.0.5", "--webhook-url", "http://" + outside.addr + "/hook"}, []string{webhookSecret}, "egress")
	a.Evidence("--egress-allow 127.0.0.5 with --webhook-url http://%s/hook: refuses to start: %s", outside.addr, msg)

	// (b) A name allowed by the list that resolves outside it: refused
	// when dialing, so the outside server sees no connection.
	s := mustStart(t, serverOptions{
		Args: []string{"--egress-allow", "localhost,127.0.0.5", "--webhook-url", fmt.Sprintf("http://localhost:%s/hook", strings.Split(outside.addr, ":")[1])},
		Env:  []string{webhookSecret},
	})
	s.pushImage(t, s.Admin, "team-a/egress", "v1", randomBytes(64))
	time.Sleep(3 * time.Second)
	if n := outside.conns.Load(); n != 0 {
		a.Errorf("the server outside the allowlist (%s) got %d connections", outside.addr, n)
	}
	denied := false
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(strings.ToLower(l), "egress") && (strings.Contains(l, "denied") || strings.Contains(l, "not allowed") || strings.Contains(l, "refused")) {
			denied = true
			a.Evidence("registryd log: %s", strings.TrimSpace(l[strings.Index(l, "msg="):]))
			break
		}
	}
	if !denied {
		a.Errorf("no log line records the refused delivery")
	}
	a.Evidence("--egress-allow localhost,127.0.0.5 with a webhook at http://localhost:%s (localhost resolves to 127.0.0.1, outside the list): after a push, the receiver got %d connections", strings.Split(outside.addr, ":")[1], outside.conns.Load())

	// (c) The allowed destination receives the data.
	s2 := mustStart(t, serverOptions{
		Args: []string{"--egress-allow", "127.0.0.5:" + allowedPort, "--webhook-url", "http://" + allowed.addr + "/hook"},
		Env:  []string{webhookSecret},
	})
	s2.pushImage(t, s2.Admin, "team-a/egress", "v1", randomBytes(64))
	deadline := time.Now().Add(15 * time.Second)
	for allowed.deliveries() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if allowed.deliveries() == 0 {
		a.Errorf("the allowed webhook receiver %s got no delivery within 15 s of a push", allowed.addr)
	}
	a.Evidence("--egress-allow 127.0.0.5:%s with a webhook there: a push was delivered (%d deliveries)", allowedPort, allowed.deliveries())

	if hasFlag(t, "upstream") {
		checkUpstreamEgress(t, a, outside)
	}
}

// checkUpstreamEgress assesses the pull-through cache's upstreams: one
// outside the allowlist must be refused at start-up or, failing that, never
// be connected to.
func checkUpstreamEgress(t *testing.T, a *assessment, outside *hookServer) {
	t.Helper()
	before := outside.conns.Load()
	args := []string{"--egress-allow", "127.0.0.5", "--upstream", "mirror=http://" + outside.addr}
	s, err := startServer(t, serverOptions{Args: args})
	if err != nil {
		var se *startError
		if !errors.As(err, &se) {
			a.Fatalf("pull-through upstream: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(se.Output), "\n")
		a.Evidence("--egress-allow 127.0.0.5 with --upstream mirror=http://%s (pull-through cache): refuses to start: %s", outside.addr, lines[len(lines)-1])
		return
	}
	r := s.do(t, s.Admin, http.MethodGet, "/v2/mirror/library/alpine/manifests/latest", nil)
	if n := outside.conns.Load() - before; n != 0 {
		a.Errorf("the pull-through cache connected %d times to its upstream %s, which is outside --egress-allow 127.0.0.5 (pull → %d)", n, outside.addr, r.Status)
		return
	}
	a.Evidence("--egress-allow 127.0.0.5 with --upstream mirror=http://%s: starts, but a pull through the cache (→ %d) made no connection to the upstream outside the allowlist", outside.addr, r.Status)
}
