package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// FileJobs is a JobStore keeping the jobs in one JSON file, for a
// Pipeline running in a single process (a registry node with local data).
// Saves write a temporary file in the same directory, fsync it, rename it
// over the file and fsync the directory, so that a crash leaves either
// the old or the new set.
type FileJobs struct {
	path string
	mu   sync.Mutex
}

// NewFileJobs returns a FileJobs storing at path; the directory must
// exist.
func NewFileJobs(path string) *FileJobs { return &FileJobs{path: path} }

type jobsFile struct {
	Schema string `json:"schema"`
	Jobs   []Job  `json:"jobs"`
}

const jobsSchema = "berth.dev/scan-jobs/v1"

// SaveJobs implements JobStore.
func (f *FileJobs) SaveJobs(ctx context.Context, jobs []Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if jobs == nil {
		jobs = []Job{}
	}
	b, err := json.Marshal(jobsFile{Schema: jobsSchema, Jobs: jobs})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("scan: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("scan: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// LoadJobs implements JobStore.
func (f *FileJobs) LoadJobs(ctx context.Context) ([]Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return []Job{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	var jf jobsFile
	if err := json.Unmarshal(b, &jf); err != nil || jf.Schema != jobsSchema {
		return nil, fmt.Errorf("scan: %s is not a job file", f.path)
	}
	if jf.Jobs == nil {
		jf.Jobs = []Job{}
	}
	return jf.Jobs, nil
}
