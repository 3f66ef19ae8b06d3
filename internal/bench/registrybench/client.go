package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// manifestAccept is what docker, containerd and crane send when resolving a tag.
const manifestAccept = "application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json"

// newTransport returns the one transport every request of a run goes through:
// plain HTTP/1.1 on loopback, keep-alive, enough idle connections for the
// manifest load, no transparent compression.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
		ForceAttemptHTTP2:   false,
	}
}

// client speaks the OCI Distribution API to one registry.
type client struct {
	base     *url.URL
	hc       *http.Client
	user     string
	password string
	authMode string // "auto", "basic", "token"

	challenge string // scheme of the server's challenge: "", "basic" or "bearer"
	realm     string
	service   string
	authz     string // Authorization header for the current phase
}

func newClient(base string, tr http.RoundTripper, user, password, authMode string) (*client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return &client{base: u, hc: &http.Client{Transport: tr}, user: user, password: password, authMode: authMode}, nil
}

// probe asks /v2/ once without credentials and records the challenge.
func (c *client) probe(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, c.base.JoinPath("/v2/").String(), nil, 0, nil)
	if err != nil {
		return err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		c.challenge = ""
		return nil
	case http.StatusUnauthorized:
	default:
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	scheme, params := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	switch strings.ToLower(scheme) {
	case "basic":
		c.challenge = "basic"
	case "bearer":
		c.challenge = "bearer"
		c.realm, c.service = params["realm"], params["service"]
		if c.realm == "" {
			return errors.New("bearer challenge without realm")
		}
	default:
		return fmt.Errorf("GET /v2/: 401 with unsupported challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	if c.user == "" {
		return errors.New("registry asks for credentials and none were given")
	}
	return nil
}

// authorize sets the Authorization header for requests to repo: nothing for
// an open registry, HTTP Basic when the server challenges with Basic or
// -auth=basic, otherwise a token from the Docker token endpoint, as docker
// and containerd do.
func (c *client) authorize(ctx context.Context, repo string) error {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password))
	switch {
	case c.challenge == "":
		c.authz = ""
		return nil
	case c.challenge == "basic" || c.authMode == "basic":
		c.authz = basic
		return nil
	}
	q := url.Values{}
	if c.service != "" {
		q.Set("service", c.service)
	}
	q.Set("scope", "repository:"+repo+":pull,push")
	realm, err := c.base.Parse(c.realm)
	if err != nil {
		return err
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", basic)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token endpoint: %s", resp.Status)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return fmt.Errorf("token endpoint: %w", err)
	}
	t := tok.Token
	if t == "" {
		t = tok.AccessToken
	}
	if t == "" {
		return errors.New("token endpoint returned no token")
	}
	c.authz = "Bearer " + t
	return nil
}

func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k] = v[1 : 1+end]
			rest = v[2+end:]
		} else {
			val, r, _ := strings.Cut(v, ",")
			params[k] = strings.TrimSpace(val)
			rest = r
		}
	}
	return scheme, params
}

func (c *client) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.hc.Do(req)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func statusErr(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return fmt.Errorf("%s: %s: %s", op, resp.Status, strings.TrimSpace(string(b)))
}

func (c *client) resolve(loc string) (*url.URL, error) {
	if loc == "" {
		return nil, errors.New("response without Location")
	}
	return c.base.Parse(loc)
}

// startUpload opens an upload session: POST /v2/<repo>/blobs/uploads/.
func (c *client) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	resp, err := c.do(ctx, http.MethodPost, c.base.JoinPath("/v2", repo, "blobs/uploads/").String(), http.NoBody, 0, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, statusErr("POST upload", resp)
	}
	drain(resp)
	return c.resolve(resp.Header.Get("Location"))
}

func withDigest(u *url.URL, digest string) string {
	v := *u
	q := v.Query()
	q.Set("digest", digest)
	v.RawQuery = q.Encode()
	return v.String()
}

// pushMonolithic uploads b the way docker and crane upload a layer in one
// piece: POST, then PUT ?digest= with the whole body.
func (c *client) pushMonolithic(ctx context.Context, repo string, b blobSpec) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPut, withDigest(loc, b.digest), newBlobReader(b.key, b.size), b.size,
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return statusErr("PUT blob", resp)
	}
	drain(resp)
	return nil
}

// pushChunked uploads b as POST, PATCH chunks with Content-Range, then PUT
// ?digest= without a body.
func (c *client) pushChunked(ctx context.Context, repo string, b blobSpec, chunk int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	r := newBlobReader(b.key, b.size)
	for off := int64(0); off < b.size; off += chunk {
		n := min(chunk, b.size-off)
		resp, err := c.do(ctx, http.MethodPatch, loc.String(), r.section(off, n), n, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
		})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
			return statusErr("PATCH chunk", resp)
		}
		drain(resp)
		if l := resp.Header.Get("Location"); l != "" {
			if loc, err = c.resolve(l); err != nil {
				return err
			}
		}
	}
	resp, err := c.do(ctx, http.MethodPut, withDigest(loc, b.digest), http.NoBody, 0, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return statusErr("PUT close upload", resp)
	}
	drain(resp)
	return nil
}

// pull GETs the whole blob, hashing it as it streams in when verify is set.
func (c *client) pull(ctx context.Context, repo string, b blobSpec, verify bool, buf []byte) error {
	resp, err := c.do(ctx, http.MethodGet, c.base.JoinPath("/v2", repo, "blobs", b.digest).String(), nil, 0, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusErr("GET blob", resp)
	}
	defer resp.Body.Close()
	var w io.Writer = io.Discard
	h := sha256.New()
	if verify {
		w = h
	}
	n, err := io.CopyBuffer(w, resp.Body, buf)
	if err != nil {
		return fmt.Errorf("GET blob: %w", err)
	}
	if n != b.size {
		return fmt.Errorf("GET blob: %d bytes, want %d", n, b.size)
	}
	if verify {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.digest {
			return fmt.Errorf("GET blob: digest %s, want %s", got, b.digest)
		}
	}
	return nil
}

// pushBytes uploads a small in-memory blob monolithically.
func (c *client) pushBytes(ctx context.Context, repo string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPut, withDigest(loc, d), bytes.NewReader(data), int64(len(data)),
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", statusErr("PUT blob", resp)
	}
	drain(resp)
	return d, nil
}

// pushImage pushes a small but well-formed single-layer OCI image and tags it.
func (c *client) pushImage(ctx context.Context, repo, tag string) (string, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	content := []byte("berth registry benchmark\n")
	if err := tw.WriteHeader(&tar.Header{Name: "bench.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	tw.Write(content)
	tw.Close()
	diffSum := sha256.Sum256(tarBuf.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()

	layerDigest, err := c.pushBytes(ctx, repo, gz.Bytes())
	if err != nil {
		return "", err
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffSum[:])}},
	})
	configDigest, err := c.pushBytes(ctx, repo, config)
	if err != nil {
		return "", err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{
			"mediaType": "application/vnd.oci.image.config.v1+json",
			"digest":    configDigest,
			"size":      len(config),
		},
		"layers": []map[string]any{{
			"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
			"digest":    layerDigest,
			"size":      gz.Len(),
		}},
	})
	resp, err := c.do(ctx, http.MethodPut, c.base.JoinPath("/v2", repo, "manifests", tag).String(), bytes.NewReader(manifest), int64(len(manifest)),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", statusErr("PUT manifest", resp)
	}
	drain(resp)
	sum := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// getManifest resolves repo:ref and reads the whole manifest.
func (c *client) getManifest(ctx context.Context, repo, ref string, buf []byte) (int, error) {
	resp, err := c.do(ctx, http.MethodGet, c.base.JoinPath("/v2", repo, "manifests", ref).String(), nil, 0,
		map[string]string{"Accept": manifestAccept})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, statusErr("GET manifest", resp)
	}
	defer resp.Body.Close()
	n, err := io.ReadFull(resp.Body, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	} else if err == nil {
		return n, errors.New("GET manifest: body larger than buffer")
	}
	return n, err
}
