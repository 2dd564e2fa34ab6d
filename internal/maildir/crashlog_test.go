package maildir

import (
	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// openCrashLog opens the crash tests' journal on fsys with tiny segments
// (and a small preallocation, which crashfs would otherwise copy at every
// crash).
func openCrashLog(fsys vfs.FS, segment int64) (*wal.Log, error) {
	return wal.OpenOptions(crashJournal, wal.Options{FS: fsys, SegmentSize: segment, PreallocSize: 2 * segment})
}
