package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// manifestAccept lists the manifest media types the store keeps.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// transport returns the authenticated transport for one upstream
// repository: the upstream's challenge is discovered once (GET /v2/), then
// requests carry HTTP Basic credentials or a Bearer token for
// repository:remote:pull, refreshed when the upstream asks again.
func (c *Cache) transport(ctx context.Context, up *upstream, remote string) (http.RoundTripper, error) {
	key := up.Prefix + "\x00" + remote
	c.mu.Lock()
	rt, ok := c.trs[key]
	c.mu.Unlock()
	if ok {
		return rt, nil
	}
	return c.transports.do(ctx, key, func() (http.RoundTripper, error) {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RequestTimeout)
		defer cancel()
		base := c.base
		if up.https {
			base = httpsOnly{host: up.host, next: base}
		}
		rt, err := transport.NewWithContext(tctx, up.reg, up.auth, base, []string{"repository:" + remote + ":pull"})
		if err != nil {
			return nil, upstreamError(err, "", "")
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.trOrder) >= maxTransports {
			delete(c.trs, c.trOrder[0])
			c.trOrder = c.trOrder[1:]
		}
		c.trs[key] = rt
		c.trOrder = append(c.trOrder, key)
		return rt, nil
	})
}

// forget drops a repository's transport, so that the next request starts
// over (for example after the upstream rejected its credentials).
func (c *Cache) forget(up *upstream, remote string) {
	key := up.Prefix + "\x00" + remote
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.trs, key)
	if i := indexOf(c.trOrder, key); i >= 0 {
		c.trOrder = append(c.trOrder[:i], c.trOrder[i+1:]...)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// httpsOnly refuses plain HTTP to an upstream configured with https://
// (go-containerregistry falls back to http for hosts on private networks).
type httpsOnly struct {
	host string
	next http.RoundTripper
}

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && r.URL.Host == h.host {
		return nil, fmt.Errorf("pullthrough: refusing plain HTTP to %s, configured as https", h.host)
	}
	return h.next.RoundTrip(r)
}

// do sends a request for path under /v2/<remote>/ and returns a 2xx
// response; any other answer, or none, is an *registry.UpstreamError
// (notFound is the specification code for a 404 without a body).
func (c *Cache) do(ctx context.Context, up *upstream, remote, method, path string, hdr http.Header, notFound string) (*http.Response, error) {
	rt, err := c.transport(ctx, up, remote)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, up.URL+"/v2/"+remote+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ctx.Err()
		}
		return nil, upstreamError(err, "", notFound)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	retry := resp.Header.Get("Retry-After")
	err = transport.CheckError(resp, http.StatusOK)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		c.forget(up, remote)
	}
	return nil, upstreamError(err, retry, notFound)
}

// upstreamError classifies a failed upstream exchange: 4xx answers pass
// through with their specification error; 5xx answers and failures to
// reach the upstream are 502 (504 for time-outs), whose cause is logged
// but not shown, since it may name internal hosts.
func upstreamError(err error, retryAfter, notFound string) error {
	var ue *registry.UpstreamError
	if errors.As(err, &ue) {
		return ue
	}
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 {
		e := &registry.UpstreamError{StatusCode: te.StatusCode, RetryAfter: retryAfter, Err: err}
		if len(te.Errors) > 0 {
			e.Code, e.Message, e.Detail = string(te.Errors[0].Code), te.Errors[0].Message, te.Errors[0].Detail
		}
		if e.Code == "" {
			e.Code = codeFor(te.StatusCode, notFound)
		}
		if e.Message == "" {
			e.Message = "upstream registry: " + strings.ToLower(http.StatusText(te.StatusCode))
		}
		return e
	}
	e := &registry.UpstreamError{StatusCode: http.StatusBadGateway, Code: "UNKNOWN", Message: "upstream registry unavailable", Err: err}
	if errors.Is(err, context.DeadlineExceeded) {
		e.StatusCode = http.StatusGatewayTimeout
	} else if te != nil {
		e.Message = fmt.Sprintf("upstream registry unavailable (%d %s)", te.StatusCode, http.StatusText(te.StatusCode))
		e.RetryAfter = retryAfter
	}
	return e
}

func codeFor(status int, notFound string) string {
	switch status {
	case http.StatusNotFound:
		if notFound != "" {
			return notFound
		}
		return "NAME_UNKNOWN"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	}
	return "UNKNOWN"
}

// unavailable reports a failure for which cached content may be served
// instead: the upstream failed, could not be reached, or throttles us.
func unavailable(err error) bool {
	var ue *registry.UpstreamError
	if !errors.As(err, &ue) {
		return false
	}
	return ue.StatusCode >= 500 || ue.StatusCode == http.StatusTooManyRequests
}
