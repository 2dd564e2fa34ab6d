package maildir

import (
	"fmt"
	"sync"

	"smtpkit/internal/vfs"
)

// Sync is how a delivery makes its message and its new/ entry durable
// before Commit returns.
type Sync int

const (
	// SyncFileSystem flushes with syncfs(2), one call shared by every
	// delivery in flight on the same file system (group commit): the
	// message files of all of them are written out and flushed by one
	// call, they are linked into new/, and a second shared call makes the
	// links durable. One disk flush acknowledges many messages, which is
	// what lets a server go past one flush per message. syncfs also
	// writes out any other dirty data on that file system, so a mail store
	// sharing a file system with heavy unrelated writers sees their cost in
	// its latency; use SyncFile there. syncfs reports write-back errors
	// since Linux 5.8.
	SyncFileSystem Sync = iota
	// SyncFile is the classic way: fsync(2) of each message file, then
	// fsync of each new/ directory, the directory flush shared by the
	// deliveries in flight to it.
	SyncFile
	// SyncJournal logs each message that fits in the write buffer (64 KiB)
	// in a write-ahead log with group commit and flushes the Maildirs at
	// checkpoints (see Writer.SetJournal); larger messages are made durable
	// the SyncFileSystem way. The caller opens the log.
	SyncJournal
)

// ParseSync maps the configuration words "journal", "filesystem" and
// "file" to a Sync.
func ParseSync(s string) (Sync, error) {
	switch s {
	case "filesystem", "":
		return SyncFileSystem, nil
	case "file":
		return SyncFile, nil
	case "journal":
		return SyncJournal, nil
	}
	return 0, fmt.Errorf("maildir: unknown sync %q (journal, filesystem or file)", s)
}

func (s Sync) String() string {
	switch s {
	case SyncFile:
		return "file"
	case SyncJournal:
		return "journal"
	}
	return "filesystem"
}

// fsSyncer groups syncfs(2) calls by file system: Flush(dir) returns once
// a syncfs of dir's file system that started after the call has finished.
type fsSyncer struct {
	fsys  vfs.FS
	group *groupSync
	devs  sync.Map // directory path → file-system key
}

// newFSSyncer flushes with fsys.SyncFS. vfs.OS opens a descriptor for
// each call: syncfs reports the write-back errors recorded since the
// descriptor was opened (Linux 5.8+), so an error during this flush is
// never missed.
func newFSSyncer(fsys vfs.FS) *fsSyncer {
	return &fsSyncer{fsys: fsys, group: newGroupSync(fsys.SyncFS)}
}

// Flush makes everything written on dir's file system so far durable.
func (f *fsSyncer) Flush(dir string) error {
	key, err := f.key(dir)
	if err != nil {
		return err
	}
	return f.group.FlushKey(key, dir)
}

// key names the file system holding dir (vfs.FS.DeviceKey), cached per
// directory: one stat per Maildir for the life of the process.
func (f *fsSyncer) key(dir string) (string, error) {
	if k, ok := f.devs.Load(dir); ok {
		return k.(string), nil
	}
	k, err := f.fsys.DeviceKey(dir)
	if err != nil {
		return "", err
	}
	f.devs.Store(dir, k)
	return k, nil
}
