package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing bytes [off, off+n) of f
// to disk without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE). Errors are ignored: the fsync that follows
// reports any failure to store the data.
func startWriteback(f *os.File, off, n int64) {
	syncRange(f, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// waitWriteback writes bytes [off, off+n) of f to disk and waits until they
// are written, so that their pages are clean and can be dropped. Like
// startWriteback it is not a durability guarantee: fsync is.
func waitWriteback(f *os.File, off, n int64) {
	syncRange(f, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}

func syncRange(f *os.File, off, n int64, flags int) {
	withFD(f, func(fd int) { _ = unix.SyncFileRange(fd, off, n, flags) })
}

// withFD runs fn on f's descriptor; nothing happens if f has none.
func withFD(f *os.File, fn func(fd int)) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// fadvise passes advice about bytes [off, off+n) of f (n == 0: to the end)
// to the kernel. Advice is a hint; errors are ignored.
func fadvise(f *os.File, off, n int64, advice int) {
	withFD(f, func(fd int) { _ = unix.Fadvise(fd, off, n, advice) })
}

// dropCache evicts the clean cached pages of bytes [off, off+n) of f
// (n == 0: to the end of the file).
func dropCache(f *os.File, off, n int64) { fadvise(f, off, n, unix.FADV_DONTNEED) }

// adviseSequential tells the kernel f is about to be read sequentially,
// which doubles its read-ahead.
func adviseSequential(f *os.File) { fadvise(f, 0, 0, unix.FADV_SEQUENTIAL) }
