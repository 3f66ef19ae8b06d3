package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/pullthrough"
	"github.com/berth-dev/berth/storage"
)

// upstreamList is the repeatable --upstream flag. Its first use replaces
// the values from the environment, as every flag overrides its variable.
type upstreamList struct {
	v   *[]string
	set bool
}

func (l *upstreamList) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, " ")
}

func (l *upstreamList) Set(v string) error {
	if !l.set {
		*l.v, l.set = nil, true
	}
	*l.v = append(*l.v, v)
	return nil
}

// upstreamFlags registers the pull-through cache's flags:
//
//	--upstream PREFIX=URL[,ttl=DURATION][,public]   (repeatable; BERTH_UPSTREAM: space-separated)
//	--upstream-credentials FILE                     (BERTH_UPSTREAM_CREDENTIALS)
//
// URL's path is the remote prefix: "hub/=https://registry-1.docker.io/library/"
// serves hub/alpine from library/alpine. FILE is JSON mapping prefixes to
// {"username","password"}; it must not be readable by group or others.
// Credentials are never taken from the command line.
func upstreamFlags(fs *flag.FlagSet, c *config, env func(name, def string) string) {
	if v := env("upstream", ""); v != "" {
		c.upstreams = strings.Fields(v)
	}
	fs.Var(&upstreamList{v: &c.upstreams}, "upstream", "pull-through cache: PREFIX=URL[,ttl=DURATION][,public], repeatable (URL's path is the remote prefix)")
	fs.StringVar(&c.upstreamCreds, "upstream-credentials", env("upstream-credentials", ""), "JSON file of upstream credentials by prefix: {\"hub/\":{\"username\":…,\"password\":…}}")
}

// parseUpstream parses one --upstream value.
func parseUpstream(spec string) (pullthrough.Upstream, error) {
	var u pullthrough.Upstream
	prefix, rest, ok := strings.Cut(spec, "=")
	if !ok || prefix == "" {
		return u, errors.New("--upstream: want PREFIX=URL[,ttl=DURATION][,public]")
	}
	u.Prefix = prefix
	if !strings.HasSuffix(u.Prefix, "/") {
		u.Prefix += "/"
	}
	parts := strings.Split(rest, ",")
	// Messages name the prefix, not the URL, which might hold a password.
	pu, err := url.Parse(parts[0])
	switch {
	case err == nil && pu.User != nil:
		return u, fmt.Errorf("--upstream %q: credentials go in --upstream-credentials, not in the URL", prefix)
	case err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http"):
		return u, fmt.Errorf("--upstream %q: not an http(s) URL", prefix)
	}
	if remote := strings.Trim(pu.Path, "/"); remote != "" {
		u.Remote = remote + "/"
	}
	pu.Path = ""
	u.URL = pu.String()
	for _, opt := range parts[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "ttl":
			if u.TagTTL, err = time.ParseDuration(v); err != nil {
				return u, fmt.Errorf("--upstream %q: ttl: %w", prefix, err)
			}
		case "public":
			u.Public = v == "" || v == "true"
		default:
			return u, fmt.Errorf("--upstream %q: unknown option %q", prefix, k)
		}
	}
	return u, nil
}

// readUpstreamCredentials reads the credentials file.
func readUpstreamCredentials(path string) (map[string]struct{ Username, Password string }, error) {
	creds := map[string]struct{ Username, Password string }{}
	if path == "" {
		return creds, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by group or others: chmod 600 it", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// upstreams builds the pull-through cache from the flags: the registry's
// Mirror (nil without upstreams) and the repository lookup the authorizer
// reads visibility from. client carries upstream requests (nil: a default
// transport).
func upstreams(c *config, store *storage.Store, repos pullthrough.RepositoryLookup, client *http.Client, log *slog.Logger) (registry.Mirror, pullthrough.RepositoryLookup, error) {
	if len(c.upstreams) == 0 {
		if c.upstreamCreds != "" {
			return nil, nil, errors.New("--upstream-credentials without --upstream")
		}
		return nil, repos, nil
	}
	creds, err := readUpstreamCredentials(c.upstreamCreds)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream credentials: %w", err)
	}
	var ups []pullthrough.Upstream
	for _, spec := range c.upstreams {
		u, err := parseUpstream(spec)
		if err != nil {
			return nil, nil, err
		}
		if cr, ok := creds[u.Prefix]; ok {
			u.Username, u.Password = cr.Username, cr.Password
			delete(creds, u.Prefix)
		}
		ups = append(ups, u)
	}
	for prefix := range creds {
		return nil, nil, fmt.Errorf("upstream credentials for %q, which no --upstream names", prefix)
	}
	cache, err := pullthrough.New(store, ups, &pullthrough.Options{Client: client, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	o := cache.Options()
	for _, u := range cache.Upstreams() {
		log.Info("pull-through cache", "upstream", u.String(), "options", o.String())
	}
	return cache, cache.Repositories(repos), nil
}
