package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const status = `Package: foo
Status: install ok installed
Source: foo-src
Version: 1.0-1
Architecture: amd64

Package: bar
Status: install ok installed
Version: 2.0-1
Architecture: amd64
`

func debianImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"var/lib/dpkg/status": status,
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeLayout(t *testing.T, imgs ...v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		plat := v1.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[i%2]}
		if err := p.AppendImage(img, layout.WithPlatform(plat)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func gate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--db", "testdata/db"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestGate(t *testing.T) {
	deb := writeLayout(t, debianImage(t))
	rnd, _ := random.Image(256, 1)
	unknown := writeLayout(t, rnd)
	both := writeLayout(t, debianImage(t), rnd)

	for _, c := range []struct {
		name string
		args []string
		want int
		in   string // expected in stdout+stderr
	}{
		{"high fails", []string{"--fail-on", "high", "oci:" + deb}, 1, "1 vulnerabilities at or above High"},
		{"default is high", []string{"oci:" + deb}, 1, "CVE-2026-1000"},
		{"critical passes", []string{"--fail-on", "critical", "oci:" + deb}, 0, "PASS"},
		{"low counts both", []string{"--fail-on", "low", "oci:" + deb}, 1, "2 vulnerabilities at or above Low"},
		{"never", []string{"--fail-on", "never", "oci:" + deb}, 0, "fixed in 1.0-2"},
		{"unknown fails", []string{"--fail-on", "critical", "oci:" + unknown}, 1, "status Unknown"},
		{"unknown passes", []string{"--unknown=pass", "oci:" + unknown}, 0, "PASS"},
		{"index: every image gated", []string{"--fail-on", "critical", "oci:" + both}, 1, "status Unknown"},
		{"platform picks one", []string{"--fail-on", "critical", "--platform", "linux/amd64", "oci:" + both}, 0, "PASS"},
		{"bad severity", []string{"--fail-on", "severe", "oci:" + deb}, 2, "unknown severity"},
		{"bad unknown", []string{"--unknown", "maybe", "oci:" + deb}, 2, "fail or pass"},
		{"no reference", nil, 2, "usage"},
		{"missing layout", []string{"oci:" + t.TempDir() + "/nope"}, 2, "scangate:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := gate(t, c.args...)
			if code != c.want || !strings.Contains(out+errs, c.in) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant %q in output", code, c.want, out, errs, c.in)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	deb := writeLayout(t, debianImage(t))
	for _, f := range []string{"json", "sarif", "cyclonedx"} {
		code, out, _ := gate(t, "--format", f, "--fail-on", "never", "oci:"+deb)
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Errorf("%s: exit %d, output %q", f, code, out)
		}
	}
}

func TestRemote(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, err := name.ParseReference(u.Host+"/team/app:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, debianImage(t)); err != nil {
		t.Fatal(err)
	}
	code, out, errs := gate(t, "--insecure", ref.String())
	if code != 1 || !strings.Contains(out, "CVE-2026-1000") || !strings.Contains(out, "debian 12") {
		t.Errorf("exit %d\n%s\n%s", code, out, errs)
	}
}
