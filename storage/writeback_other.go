//go:build !linux

package storage

import "os"

// startWriteback does nothing where sync_file_range does not exist: the
// fsync that follows writes everything.
func startWriteback(*os.File, int64, int64) {}

// waitWriteback does nothing where sync_file_range does not exist.
func waitWriteback(*os.File, int64, int64) {}

// dropCache does nothing where posix_fadvise is not available.
func dropCache(*os.File, int64, int64) {}

// adviseSequential does nothing where posix_fadvise is not available.
func adviseSequential(*os.File) {}
