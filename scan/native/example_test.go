package native_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/scan/native"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Scan an image against OSV records: the Debian advisory names the
// source package (openssl), and matches the binary package built from it.
func ExampleScanner_Scan() {
	db, _ := native.NewDB([]*native.Advisory{{
		ID:       "DEBIAN-CVE-2026-0001",
		Upstream: []string{"CVE-2026-0001"},
		Severity: []native.OSVSeverity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}},
		Affected: []native.Affected{{
			Package: native.OSVPackage{Ecosystem: "Debian:12", Name: "openssl"},
			Ranges:  []native.Range{{Type: "ECOSYSTEM", Events: []native.Event{{Introduced: "0"}, {Fixed: "3.0.11-1~deb12u3"}}}},
		}},
	}})
	s, _ := native.New(db, nil)

	img, _ := mutate.AppendLayers(empty.Image, tarLayer(map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
		"var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n",
	}))
	r, err := s.Scan(context.Background(), img, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Status, r.OS)
	for _, v := range r.Vulnerabilities {
		fmt.Println(v.ID, v.Package.Name, v.Package.Version, "→", v.FixedVersion, v.Severity, v.Score)
		fmt.Println(v.Package.PURL)
	}
	// Output:
	// Succeeded debian 12
	// CVE-2026-0001 libssl3 3.0.11-1~deb12u2 → 3.0.11-1~deb12u3 High 7.5
	// pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl
}

func tarLayer(files map[string]string) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"etc/os-release", "var/lib/dpkg/status"} {
		body := files[name]
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, body)
	}
	tw.Close()
	b := buf.Bytes()
	l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	return l
}
