package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	for _, c := range []struct {
		spec, want, err string
	}{
		{spec: "hub/=https://registry-1.docker.io/library/", want: "hub/=https://registry-1.docker.io/library/ (anonymous, tag-ttl 0s, private)"},
		{spec: "hub=https://registry-1.docker.io/library", want: "hub/=https://registry-1.docker.io/library/ (anonymous, tag-ttl 0s, private)"},
		{spec: "m/=http://10.0.0.5:5000,ttl=90s,public", want: "m/=http://10.0.0.5:5000/ (anonymous, tag-ttl 1m30s, public)"},
		{spec: "m/=http://10.0.0.5:5000/a/b/,public=false", want: "m/=http://10.0.0.5:5000/a/b/ (anonymous, tag-ttl 0s, private)"},
		{spec: "https://example", err: "want PREFIX=URL"},
		{spec: "m/=https://user:pw@example", err: "--upstream-credentials"},
		{spec: "m/=example", err: "not an http(s) URL"},
		{spec: "m/=ftp://example", err: "not an http(s) URL"},
		{spec: "m/=https://u:sekret@example/%zz", err: "not an http(s) URL"},
		{spec: "m/=https://example,ttl=soon", err: "ttl"},
		{spec: "m/=https://example,mirror", err: "unknown option"},
	} {
		u, err := parseUpstream(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "sekret") {
				t.Errorf("%q: error %v, want one mentioning %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := u.String(); got != c.want {
			t.Errorf("%q: %s, want %s", c.spec, got, c.want)
		}
	}
}

func TestUpstreamFlags(t *testing.T) {
	t.Setenv("BERTH_UPSTREAM", "a/=https://a.example b/=https://b.example")
	c, err := parseFlags(nil)
	if err != nil || strings.Join(c.upstreams, " ") != "a/=https://a.example b/=https://b.example" {
		t.Fatalf("from the environment: %q %v", c.upstreams, err)
	}
	c, err = parseFlags([]string{"--upstream", "c/=https://c.example", "--upstream", "d/=https://d.example"})
	if err != nil || strings.Join(c.upstreams, " ") != "c/=https://c.example d/=https://d.example" {
		t.Fatalf("flags over the environment: %q %v", c.upstreams, err)
	}
}

func TestUpstreamCredentials(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(p, []byte(`{"hub/":{"username":"u","password":"secret"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readUpstreamCredentials(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable credentials accepted: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := readUpstreamCredentials(p)
	if err != nil || creds["hub/"].Username != "u" || creds["hub/"].Password != "secret" {
		t.Fatalf("%v %v", creds, err)
	}
	if _, _, err := upstreams(&config{upstreamCreds: p}, nil, nil, nil, nil); err == nil {
		t.Fatal("credentials without upstreams accepted")
	}
	if _, _, err := upstreams(&config{upstreams: []string{"other/=https://registry.example"}, upstreamCreds: p}, nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "no --upstream names") {
		t.Fatalf("credentials for an unknown prefix: %v", err)
	}
}
