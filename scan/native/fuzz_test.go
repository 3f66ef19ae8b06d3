package native_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// FuzzPackageDatabases feeds arbitrary bytes to every parser as the
// content of the files they read; Index must neither fail nor panic.
func FuzzPackageDatabases(f *testing.F) {
	f.Add([]byte(apkInstalled))
	f.Add([]byte("Package: a\nStatus: install ok installed\nSource: b (1:2-3)\nVersion: 1:2-3\n\n"))
	f.Add([]byte(alpineOSRelease))
	f.Add([]byte(`{"name":"@s/x","version":"1"}`))
	f.Add([]byte("Name: x\nVersion: 1\n\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	s := newScanner(f, mustDB(f, alpineRecords))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := image(t, layer(t,
			file{Name: "etc/os-release", Body: data},
			file{Name: "var/lib/dpkg/status", Body: data},
			file{Name: "var/lib/dpkg/status.d/x", Body: data},
			file{Name: "lib/apk/db/installed", Body: data},
			file{Name: "node_modules/x/package.json", Body: data},
			file{Name: "x.dist-info/METADATA", Body: data},
			file{Name: "bin/x", Body: data, Mode: 0o755},
		))
		inv, err := s.Index(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Match(context.Background(), inv); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLayer feeds arbitrary bytes as a layer; Index may fail but must not
// panic.
func FuzzLayer(f *testing.F) {
	var buf bytes.Buffer
	img := alpineImage(f)
	ls, _ := img.Layers()
	rc, _ := ls[1].Uncompressed()
	io.Copy(&buf, rc)
	f.Add(buf.Bytes())
	f.Add([]byte{})
	s := newScanner(f, mustDB(f, alpineRecords))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return
		}
		s.Index(context.Background(), image(t, l))
	})
}
