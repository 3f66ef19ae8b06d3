package native

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fileVisitor is called for every regular file visible in the image's
// merged filesystem (after whiteouts), top layer first. name is clean,
// absolute ("/etc/os-release"); r reads the file's content and is only
// valid during the call.
type fileVisitor func(name string, hdr *tar.Header, r io.Reader) error

// errStopWalk may be returned by a visitor to end the walk early.
var errStopWalk = errors.New("stop walk")

// walkImage walks img's layers from the top down, applying OCI whiteouts
// (".wh.NAME" deletes NAME from lower layers, ".wh..wh..opq" hides a
// directory's lower contents), and calls visit for each regular file
// exactly once, with its content from the topmost layer holding it. A
// path hidden by a file, whiteout or opaque directory of an upper layer
// is never visited, nor is anything under a path that an upper layer
// turned into a non-directory.
func walkImage(ctx context.Context, img v1.Image, visit fileVisitor) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("native: reading layers: %w", err)
	}
	w := walker{
		seen:    map[string]bool{},
		deleted: map[string]bool{},
		opaque:  map[string]bool{},
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.layer(ctx, layers[i], visit); err != nil {
			if errors.Is(err, errStopWalk) {
				return nil
			}
			return err
		}
	}
	return nil
}

type walker struct {
	// seen maps every path an upper layer holds to whether it is a
	// directory.
	seen map[string]bool
	// deleted are paths whited out by an upper layer; opaque are
	// directories whose lower contents an upper layer hid.
	deleted, opaque map[string]bool
}

func (w *walker) hidden(name string) bool {
	if _, ok := w.seen[name]; ok {
		return true
	}
	if w.deleted[name] {
		return true
	}
	for dir := path.Dir(name); ; dir = path.Dir(dir) {
		if w.deleted[dir] || w.opaque[dir] {
			return true
		}
		if isDir, ok := w.seen[dir]; ok && !isDir {
			return true
		}
		if dir == "/" {
			return false
		}
	}
}

func (w *walker) layer(ctx context.Context, l v1.Layer, visit fileVisitor) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("native: opening layer: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	// Effects of this layer apply to lower layers only.
	seen := map[string]bool{}
	var deleted, opaque []string
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("native: reading layer: %w", err)
		}
		name := path.Clean("/" + hdr.Name)
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		if base == ".wh..wh..opq" {
			opaque = append(opaque, dir)
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			deleted = append(deleted, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		if w.hidden(name) {
			continue
		}
		if _, dup := seen[name]; dup {
			continue
		}
		seen[name] = hdr.Typeflag == tar.TypeDir
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		if err := visit(name, hdr, tr); err != nil {
			return err
		}
	}
	for k, v := range seen {
		w.seen[k] = v
	}
	for _, d := range deleted {
		w.deleted[d] = true
	}
	for _, d := range opaque {
		w.opaque[d] = true
	}
	return nil
}
