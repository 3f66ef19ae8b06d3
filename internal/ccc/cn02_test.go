package ccc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage/envelope"
	"github.com/jackc/pgx/v5"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
)

// rawObjects reads every object of a blob backend as stored, bypassing
// Berth.
type rawObjects interface {
	// all returns every object's bytes by key.
	all(t *testing.T) map[string][]byte
	// put overwrites an object.
	put(t *testing.T, key string, b []byte)
	describe() string
}

// fileObjects is a file bucket's directory.
type fileObjects struct{ dir string }

func (f fileObjects) all(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f fileObjects) put(t *testing.T, key string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, filepath.FromSlash(key)), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f fileObjects) describe() string { return "the file bucket's directory " + f.dir }

// bucketObjects is a gocloud bucket opened with the backend's own client.
type bucketObjects struct {
	b    *blob.Bucket
	name string
}

func (o bucketObjects) all(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	it := o.b.List(nil)
	for {
		obj, err := it.Next(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := o.b.ReadAll(t.Context(), obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[obj.Key] = b
	}
	return out
}

func (o bucketObjects) put(t *testing.T, key string, b []byte) {
	t.Helper()
	if err := o.b.WriteAll(t.Context(), key, b, nil); err != nil {
		t.Fatal(err)
	}
}

func (o bucketObjects) describe() string { return o.name }

// windowIndex finds, in any data, a run of 127 or more bytes of a
// plaintext: such a run contains one of the plaintext's 64-byte windows at
// a multiple of 64, which a rolling hash finds.
type windowIndex struct {
	plain []byte
	at    map[uint64][]int // hash → offsets of aligned windows
}

const (
	window   = 64
	hashBase = 1099511628211
)

func newWindowIndex(plain []byte) *windowIndex {
	w := &windowIndex{plain: plain, at: map[uint64][]int{}}
	for off := 0; off+window <= len(plain); off += window {
		h := rollHash(plain[off : off+window])
		w.at[h] = append(w.at[h], off)
	}
	return w
}

func rollHash(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*hashBase + uint64(c)
	}
	return h
}

// find returns the offset in data of a plaintext window, or -1.
func (w *windowIndex) find(data []byte) int {
	if len(data) < window {
		return -1
	}
	var pow uint64 = 1
	for range window - 1 {
		pow *= hashBase
	}
	h := rollHash(data[:window])
	for i := 0; ; i++ {
		for _, off := range w.at[h] {
			if bytes.Equal(data[i:i+window], w.plain[off:off+window]) {
				return i
			}
		}
		if i+window >= len(data) {
			return -1
		}
		h = (h-uint64(data[i])*pow)*hashBase + uint64(data[i+window])
	}
}

func TestCCC_Core_CN02_AR01_C02_TR01_EncryptionAtRest(t *testing.T) {
	a := assess(t)
	t.Parallel()
	t.Run("file-sqlite", func(t *testing.T) {
		t.Parallel()
		data, err := os.MkdirTemp(workDir, "data-")
		if err != nil {
			t.Fatal(err)
		}
		s := mustStart(t, serverOptions{Data: data})
		checkEncryption(t, a, s, fileObjects{filepath.Join(data, "blobs")}, func(t *testing.T, secret string) {
			files, _ := filepath.Glob(filepath.Join(data, "meta.db*"))
			if len(files) == 0 {
				a.Fatalf("no SQLite database under %s", data)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(secret)) {
					a.Errorf("the token secret is stored in clear text in %s", f)
				}
			}
			a.Evidence("file-sqlite: the SQLite files (%d: meta.db and its journal) do not contain the token secret", len(files))
			if st, err := os.Stat(filepath.Join(data, "kek")); err == nil {
				if st.Mode().Perm()&0o077 != 0 {
					a.Errorf("the local key-encryption key DATA/kek has mode %v", st.Mode().Perm())
				}
				a.Evidence("file-sqlite: the key-encryption key is the local file DATA/kek (mode %v): by default the data directory holds the ciphertext and the key that unwraps it; --keeper-url moves the key to a KMS (awskms, gcpkms, azurekeyvault)", st.Mode().Perm())
			}
		})
	})
	t.Run("s3-postgres", func(t *testing.T) {
		t.Parallel()
		if (os.Getenv(testsvc.EnvS3) == "" || os.Getenv(testsvc.EnvPostgres) == "") && !testsvc.InCI() {
			a.Evidence("s3-postgres: not assessed in this run (%s or %s unset; start the test services to include it)", testsvc.EnvS3, testsvc.EnvPostgres)
		}
		base := testsvc.URL(t, testsvc.EnvS3)
		pg := testsvc.Postgres(t)
		prefix := testsvc.Name(t) + "/"
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("prefix", prefix)
		u.RawQuery = q.Encode()
		raw, err := blob.OpenBucket(t.Context(), base)
		if err != nil {
			t.Fatal(err)
		}
		pb := blob.PrefixedBucket(raw, prefix)
		t.Cleanup(func() {
			ctx := context.Background()
			it := pb.List(nil)
			for {
				obj, err := it.Next(ctx)
				if err != nil {
					break
				}
				_ = pb.Delete(ctx, obj.Key)
			}
			_ = pb.Close()
		})
		s := mustStart(t, serverOptions{Args: []string{"--blob-url", u.String(), "--meta-url", pg}})
		checkEncryption(t, a, s, bucketObjects{pb, "the S3 bucket (versitygw) read with the AWS SDK"}, func(t *testing.T, secret string) {
			rows := dumpPostgres(t, pg)
			if strings.Contains(rows, secret) {
				a.Errorf("the token secret is stored in clear text in PostgreSQL")
			}
			a.Evidence("s3-postgres: a text dump of every PostgreSQL table (%d bytes) does not contain the token secret", len(rows))
		})
	})
}

// dumpPostgres returns every row of every table in the public schema as
// text.
func dumpPostgres(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables []string
	rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := conn.Query(t.Context(), fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{tbl}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s)
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

// checkEncryption pushes a 3 MiB blob with a marker and assesses what the
// backend stores; metaCheck looks for a token secret in the metadata.
func checkEncryption(t *testing.T, a *assessment, s *server, raw rawObjects, metaCheck func(t *testing.T, secret string)) {
	name := strings.TrimPrefix(t.Name(), a.t.Name()+"/")
	plain := randomBytes(3 << 20)
	marker := []byte("CCC-CN02-MARKER-" + randomHex(8)) // 32 bytes
	copy(plain[1<<20+7:], marker)
	repo := "team-a/cn02"
	d := s.pushBlob(t, s.Admin, repo, plain)
	a.Evidence("%s: pushed a 3 MiB blob %s holding the 32-byte marker %q", name, d, marker)

	objs := raw.all(t)
	idx := newWindowIndex(plain)
	wantSize := envelope.CiphertextSize(int64(len(plain)))
	var target string
	ciphertexts := 0
	for key, b := range objs {
		if bytes.Contains(b, marker) {
			a.Errorf("%s: object %s contains the marker in clear text", name, key)
		}
		if off := idx.find(b); off >= 0 {
			a.Errorf("%s: object %s contains 64 bytes of the plaintext at offset %d", name, key, off)
		}
		if !strings.HasPrefix(key, "blobs/") {
			continue
		}
		ciphertexts++
		if len(b) < envelope.HeaderSize || b[0] != envelope.HeaderSize {
			a.Errorf("%s: object %s does not start with the envelope header (first byte %v)", name, key, b[:min(1, len(b))])
		}
		if _, err := envelope.PlaintextSize(int64(len(b))); err != nil {
			a.Errorf("%s: object %s has a size (%d) no envelope ciphertext has: %v", name, key, len(b), err)
		}
		if int64(len(b)) == wantSize {
			target = key
		}
	}
	if target == "" {
		a.Fatalf("%s: no stored object has the ciphertext size %d of the pushed blob (objects: %d)", name, wantSize, len(objs))
	}
	a.Evidence("%s: read %d raw objects from %s: none contains the marker or any 64-byte window of the plaintext; all %d blob objects start with the %d-byte envelope header (%s: AES-256-GCM segments of 64 KiB under a per-blob data key wrapped by the key-encryption key)",
		name, len(objs), raw.describe(), ciphertexts, envelope.HeaderSize, envelope.Scheme)

	// A ranged read decrypts correctly.
	r := s.do(t, s.Admin, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil, "Range", "bytes=2000000-2000099")
	if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, plain[2000000:2000100]) {
		a.Errorf("%s: ranged GET: %d, %d bytes, want 206 with the plaintext's bytes 2000000-2000099", name, r.Status, len(r.Body))
	} else {
		a.Evidence("%s: ranged GET bytes=2000000-2000099 → 206 with the right plaintext", name)
	}

	// One flipped ciphertext byte: reads fail, and never serve wrong bytes.
	b := objs[target]
	flip := envelope.HeaderSize + 10*envelope.SegmentSize + 100
	b[flip] ^= 0x01
	raw.put(t, target, b)
	res, err := s.request(s.Admin, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
	switch {
	case err != nil:
		a.Evidence("%s: after flipping ciphertext byte %d of %s, GET failed: %v", name, flip, target, err)
	case res.Status == http.StatusOK && bytes.Equal(res.Body, plain):
		a.Errorf("%s: after flipping ciphertext byte %d, GET served the whole plaintext: the ciphertext is not authenticated", name, flip)
	case res.Status == http.StatusOK:
		a.Errorf("%s: after flipping ciphertext byte %d, GET returned 200 with %d bytes that are not the plaintext", name, flip, len(res.Body))
	default:
		a.Evidence("%s: after flipping ciphertext byte %d, GET → %d %s", name, flip, res.Status, bytes.TrimSpace(res.Body))
	}
	// Whatever arrived before the failure must be a prefix of the plaintext.
	if res != nil && res.Status == http.StatusOK && !bytes.HasPrefix(plain, res.Body) {
		a.Errorf("%s: the corrupted read delivered bytes that differ from the plaintext", name)
	}
	seg10 := int64(10*(envelope.SegmentSize-envelope.TagSize) - envelope.HeaderSize) // first plaintext byte of segment 10
	rr, err := s.request(s.Admin, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil, "Range", fmt.Sprintf("bytes=%d-%d", seg10+40, seg10+139))
	switch {
	case err != nil:
		a.Evidence("%s: a ranged GET inside the corrupted segment failed: %v", name, err)
	case rr.Status == http.StatusPartialContent:
		a.Errorf("%s: a ranged GET inside the corrupted segment returned 206 with %d bytes", name, len(rr.Body))
	default:
		a.Evidence("%s: a ranged GET inside the corrupted segment → %d", name, rr.Status)
	}

	// Secrets are stored only as hashes.
	tok := s.createToken(t, "cn02-secret", "1h", "repository:team-a/**:pull")
	metaCheck(t, tok.Secret)
}
