package vfs_test

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"smtpkit/internal/vfs"
)

// TestKindOf: every kind where syncfs(2) is not a durability barrier —
// FUSE, network and cluster file systems, unknown types — says so; the
// local disk and memory file systems say it is.
func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		fsType  int64
		name    string
		class   vfs.Class
		barrier bool
	}{
		{unix.EXT4_SUPER_MAGIC, "ext4", vfs.ClassLocal, true},
		{unix.XFS_SUPER_MAGIC, "xfs", vfs.ClassLocal, true},
		{unix.BTRFS_SUPER_MAGIC, "btrfs", vfs.ClassLocal, true},
		{0x2FC12FC1, "zfs", vfs.ClassLocal, true},
		{unix.OVERLAYFS_SUPER_MAGIC, "overlayfs", vfs.ClassLocal, true},
		{unix.TMPFS_MAGIC, "tmpfs", vfs.ClassMemory, true},
		{unix.RAMFS_MAGIC, "ramfs", vfs.ClassMemory, true},
		{0x65735546, "fuse", vfs.ClassFUSE, false},
		{unix.FUSE_SUPER_MAGIC, "fuse", vfs.ClassFUSE, false},
		{0x6969, "nfs", vfs.ClassNetwork, false},
		{unix.NFS_SUPER_MAGIC, "nfs", vfs.ClassNetwork, false},
		{0xFF534D42, "cifs", vfs.ClassNetwork, false},
		{0xFE534D42, "smb2", vfs.ClassNetwork, false},
		{unix.SMB_SUPER_MAGIC, "smb", vfs.ClassNetwork, false},
		{0x01021997, "9p", vfs.ClassNetwork, false},
		{unix.V9FS_MAGIC, "9p", vfs.ClassNetwork, false},
		{0x00C36400, "ceph", vfs.ClassNetwork, false},
		{unix.AFS_SUPER_MAGIC, "afs", vfs.ClassNetwork, false},
		{unix.AFS_FS_MAGIC, "kafs", vfs.ClassNetwork, false},
		{unix.CODA_SUPER_MAGIC, "coda", vfs.ClassNetwork, false},
		{0x0BD00BD0, "lustre", vfs.ClassNetwork, false},
		{int64(int32(-0x00ACB2BE)), "cifs", vfs.ClassNetwork, false}, // 0xFF534D42 as a 32-bit host's signed f_type
		{0x12345678, "unknown", vfs.ClassUnknown, false},
		{0, "unknown", vfs.ClassUnknown, false},
	} {
		k := vfs.KindOf(tc.fsType)
		if k.Name != tc.name || k.Class != tc.class || k.SyncFSIsBarrier() != tc.barrier {
			t.Errorf("KindOf(%#x) = %v class %d barrier %v, want %s class %d barrier %v",
				tc.fsType, k, k.Class, k.SyncFSIsBarrier(), tc.name, tc.class, tc.barrier)
		}
		if why := k.Why(); (why == "") != tc.barrier {
			t.Errorf("KindOf(%#x).Why() = %q, want a reason exactly when syncfs is no barrier", tc.fsType, why)
		}
		if !strings.Contains(k.String(), tc.name) {
			t.Errorf("KindOf(%#x).String() = %q, want the name %s", tc.fsType, k, tc.name)
		}
	}
}

// TestStatfsKindHere: the real Statfs of a test directory gives a type
// KindOf knows (the test machines run on ext4, xfs, btrfs, overlayfs or
// tmpfs); an unknown one is reported, not failed, so a new CI host does
// not break the build.
func TestStatfsKindHere(t *testing.T) {
	u, err := vfs.OS{}.Statfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if k := vfs.KindOf(u.Type); k.Class == vfs.ClassUnknown {
		t.Logf("the test directory's file system %v is not in the table", k)
	}
}
