// Package crashfs is an in-memory vfs.FS that can lose power. It keeps,
// for every file and directory, what a Linux file system has made durable
// apart from what a process sees (the page cache), so that a test can cut
// the power at any point and look at exactly what a real file system —
// ext4-like, taken at its worst case, which POSIX permits — may keep.
//
// The model:
//   - A regular file (inode) has volatile content and size, seen by every
//     read, and durable content and size. File.Datasync makes that inode's
//     content and size durable, File.Sync also its mode. Neither makes a
//     name of the file durable.
//   - A directory has volatile entries and durable entries. Every entry
//     operation — a create (OpenFile with O_CREATE, Mkdir, Link,
//     File.LinkTo), a remove and each side of a rename — is logged in the
//     directory it changes; SyncDir makes that directory's entries durable
//     (and nothing else). A new directory's own entry is in its parent, so
//     MkdirAll needs a SyncDir of each parent (or a SyncFS). A rename within
//     one directory is one entry operation: after a crash the directory has
//     the old mapping or the new one. A rename across directories is two,
//     one in each: both directories must be synced (a crash may leave the
//     file under both names or under neither).
//   - SyncFS makes everything on the mount that holds the path durable.
//   - Hard links (Link, File.LinkTo) share the inode. OpenAnonymous is
//     O_TMPFILE: an inode without a name until LinkTo; Options.NoAnonymous
//     makes it return vfs.ErrUnsupported, to test the fallbacks.
//   - Errors are what package os returns: *fs.PathError or *os.LinkError
//     wrapping a syscall.Errno, so errors.Is(err, fs.ErrNotExist) and
//     friends work.
//   - Options.Capacity bounds the space: file sizes are counted in 4 KiB
//     blocks (there are no sparse files), a write that does not fit fails
//     whole with syscall.ENOSPC (no short writes), and Statfs reports Total
//     and Free. Options.Mounts splits the tree into file systems by path
//     prefix, for DeviceKey and SyncFS; renames and links across them fail
//     with EXDEV.
//
// Power loss:
//   - Crash returns the file system after a power loss in the strict
//     mode: every unsynced change is gone. The new FS holds only what was
//     durable, reachable from the root through durable entries; files
//     with a durable name but unsynced data come back with their durable
//     content (empty or short).
//   - CrashRandom(seed) lets each unsynced change survive or not,
//     independently, in the ways a file system may write back its page
//     cache: a file's size is the durable one, the volatile one, or (when
//     it grew) a page boundary in between; each 4 KiB page in the changed
//     range holds its new bytes or its durable ones (zeros past the durable
//     size), so unsynced appended data may survive as a prefix or with
//     holes, and a grown size may survive without its data; each logged
//     entry operation of a directory survives or not, in order, a rename
//     within a directory staying atomic.
//   - CrashAfter(n) sets a crash point: the n following mutating calls
//     (creates, writes, truncates, renames, links, removes, chmods, and
//     every Sync, Datasync, SyncDir and SyncFS) succeed, and then the
//     file system freezes: every later call, reads included, fails with
//     EIO and changes nothing, as the disk of a machine that lost power.
//     Ops counts the mutating calls, so a test can run a workload once,
//     count its steps, and then crash it at every step boundary.
//
// Options.AfterSync is called after every successful flush, outside the
// lock, so that a test can let other goroutines run while a "flush is in
// flight" (runtime.Gosched), as they do on a real disk.
//
// After Crash or CrashRandom the old FS and its open files are dead: every
// call fails with EIO. An FS is safe for concurrent use (one mutex).
package crashfs
