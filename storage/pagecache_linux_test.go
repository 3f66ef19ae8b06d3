package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/berth-dev/berth/storage/memmeta"
	"golang.org/x/sys/unix"
)

// residentBytes is how many bytes of the regular files under dir are in
// the page cache.
func residentBytes(t *testing.T, dir string) (resident, total int64) {
	t.Helper()
	page := int64(os.Getpagesize())
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() == 0 {
			return err
		}
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		defer unix.Munmap(m)
		vec := make([]byte, (st.Size()+page-1)/page)
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			return e
		}
		for _, v := range vec {
			if v&1 != 0 {
				resident += page
			}
		}
		total += st.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return resident, total
}

// TestPageCacheDropBehind checks that the content of large blobs in a
// local directory leaves the page cache once durable, after writes and
// after reads, that small blobs and CacheContent keep it, and that the
// content read back is intact.
func TestPageCacheDropBehind(t *testing.T) {
	big := make([]byte, 3*dropLag+12345)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	small := bytes.Repeat([]byte("small blob "), 1000)
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "CacheContent"}[keep]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "blobs")
			key, _, err := LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "kek"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, "file://"+filepath.ToSlash(dir), memmeta.New(), &Options{Keeper: key, CacheContent: keep})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			bd, err := s.PutBlob(ctx, bytes.NewReader(big), Descriptor{Size: int64(len(big))})
			if err != nil {
				t.Fatal(err)
			}
			res, total := residentBytes(t, dir)
			if total < int64(len(big)) {
				t.Fatalf("%d bytes stored for a %d-byte blob", total, len(big))
			}
			if !keep && res > total/8 {
				t.Errorf("after the write %d of %d bytes are still cached; want them dropped", res, total)
			}
			if keep && res < total/2 {
				t.Errorf("CacheContent: after the write only %d of %d bytes are cached", res, total)
			}

			read := func(d Descriptor) []byte {
				r, err := s.OpenBlob(ctx, d.Digest, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				b, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			if got := read(bd); !bytes.Equal(got, big) {
				t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(big))
			}
			// WriteTo (what HTTP responses use) sends the same content,
			// and a failing destination ends it with the destination's
			// error.
			r, err := s.OpenBlob(ctx, bd.Digest, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if n, err := r.WriteTo(&buf); err != nil || n != int64(len(big)) || !bytes.Equal(buf.Bytes(), big) {
				t.Fatalf("WriteTo: %d bytes, %v; content equal: %t", n, err, bytes.Equal(buf.Bytes(), big))
			}
			r.Close()
			r, err = s.OpenBlob(ctx, bd.Digest, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			errGone := errors.New("client went away")
			if _, err := r.WriteTo(&failingWriter{left: 5 << 20, err: errGone}); !errors.Is(err, errGone) {
				t.Fatalf("WriteTo to a failing writer: %v, want %v", err, errGone)
			}
			r.Close()
			if res, total := residentBytes(t, dir); !keep && res > total/8 {
				t.Errorf("after a read %d of %d bytes are cached; want them dropped behind the read", res, total)
			}

			// Small blobs (manifests, configs) stay cached.
			before, _ := residentBytes(t, dir)
			sd, err := s.PutBlob(ctx, bytes.NewReader(small), Descriptor{Size: int64(len(small))})
			if err != nil {
				t.Fatal(err)
			}
			if got := read(sd); !bytes.Equal(got, small) {
				t.Fatal("small blob read back differs")
			}
			after, _ := residentBytes(t, dir)
			if after-before < int64(len(small))/2 {
				t.Errorf("a %d-byte blob left only %d bytes in the page cache", len(small), after-before)
			}
		})
	}
}

// failingWriter accepts left bytes, then fails with err.
type failingWriter struct {
	left int
	err  error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, w.err
	}
	w.left -= len(p)
	return len(p), nil
}
