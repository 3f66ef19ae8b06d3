// Package execscan runs an external scanner command on an image written
// to a temporary docker-archive tarball and returns its standard output.
// It is shared by the trivyscan and grypescan adapters.
package execscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/scan/internal/ctximage"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Placeholder is replaced in arguments (also inside one, as in
// "docker-archive:{image}") by the tarball's path.
const Placeholder = "{image}"

// Run writes img to a tarball in a fresh temporary directory under
// tmpDir ("" for os.TempDir), runs command with args (Placeholder replaced
// by the tarball's path) and env appended to the process environment, and
// returns its standard output, at most maxOut bytes. The directory is
// removed before Run returns. A non-zero exit status is an error quoting
// the end of standard error.
func Run(ctx context.Context, img v1.Image, command string, args, env []string, tmpDir string, maxOut int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "berth-scan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "image.tar")
	ref, err := name.NewTag("berth.invalid/scan:image")
	if err != nil {
		return nil, err
	}
	if err := tarball.WriteToFile(file, ref, ctximage.Wrap(ctx, img)); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("writing image tarball: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := make([]string, len(args))
	for i, s := range args {
		a[i] = strings.ReplaceAll(s, Placeholder, file)
	}
	return output(ctx, dir, command, a, env, maxOut)
}

// Output runs command with args and env (no image) and returns its
// standard output, at most maxOut bytes.
func Output(ctx context.Context, command string, args, env []string, maxOut int64) ([]byte, error) {
	return output(ctx, "", command, args, env, maxOut)
}

// output runs command with args and env in dir ("" for the current
// directory) and returns its standard output, at most maxOut bytes. A
// non-zero exit status is an error quoting the end of standard error.
func output(ctx context.Context, dir, command string, args, env []string, maxOut int64) ([]byte, error) {
	cmd := exec.CommandContext(ctx, command, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &limitedBuffer{max: maxOut}
	stderr := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(command), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if out.over {
		return nil, errors.New(filepath.Base(command) + ": output larger than the limit")
	}
	return out.Bytes(), nil
}

type limitedBuffer struct {
	bytes.Buffer
	max  int64
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - int64(b.Len()); int64(len(p)) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// RedactEnv returns env's variable names with their values replaced by
// "REDACTED", for start-up logs: values may hold credentials.
func RedactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		out[i] = k + "=REDACTED"
	}
	return out
}
