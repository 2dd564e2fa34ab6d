package wal

import (
	"errors"
	"syscall"

	"smtpkit/internal/vfs"
)

// Preallocation: a new segment file starts with zeros written and synced,
// so that the fdatasyncs of the appends into it flush data alone. It is
// sized to the free space, so that a small data disk is not filled by the
// journal before the first message:
//   - at most the configured PreallocSize (DefaultPreallocSize),
//   - at most 1/preallocShare of the free space, rounded down to 4 KiB,
//   - none when that is under minPrealloc,
//   - and a preallocation that fails for want of space (ENOSPC, EDQUOT)
//     is dropped (the file truncated to 0): the segment grows as records
//     come, and an append fails only when its own record does not fit.
const (
	preallocShare = 8
	minPrealloc   = 64 << 10
)

// preallocSize is how much to preallocate for a new segment now.
func (l *Log) preallocSize() int64 {
	size := l.prealloc
	if u, err := l.fs.Statfs(l.dir); err == nil {
		size = min(size, int64(u.Free/preallocShare))
	}
	size &^= 4<<10 - 1
	if size < minPrealloc {
		return 0
	}
	return size
}

// preallocate writes and syncs the zeros of a new segment file f.
func (l *Log) preallocate(f vfs.File) error {
	size := l.preallocSize()
	if size == 0 {
		return nil
	}
	_, err := f.Write(make([]byte, size))
	if err == nil {
		err = f.Sync()
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return f.Truncate(0)
	}
	return err
}
