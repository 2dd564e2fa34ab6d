package vfs

import "fmt"

// Class is what a file system's kind means for durability: whether
// syncfs(2) on it is a barrier, i.e. whether data that only syncfs
// flushed survives a power loss.
type Class int

const (
	// ClassLocal is a disk file system whose sync_fs writes out and
	// flushes everything (ext4, XFS, Btrfs, ZFS, …): syncfs is a barrier.
	ClassLocal Class = iota
	// ClassMemory keeps everything in RAM (tmpfs, ramfs): syncfs has
	// nothing to do and nothing survives a reboot anyway.
	ClassMemory
	// ClassFUSE is a file system in user space (sshfs, gocryptfs,
	// mergerfs, virtiofs, …). The kernel never passes syncfs to the FUSE
	// daemon, so syncfs is not a barrier; fsync is (FUSE_FSYNC).
	ClassFUSE
	// ClassNetwork is a network or cluster file system (NFS, SMB, 9p,
	// Ceph, AFS, …): syncfs writes dirty pages back to the client's cache
	// layer at best, it does not promise the server made them durable;
	// fsync is the call their protocols honour (NFS COMMIT, SMB flush).
	ClassNetwork
	// ClassUnknown is a type not in the table: syncfs is not known to be
	// a barrier, so it is treated as not one.
	ClassUnknown
)

// Kind names a file system type as statfs reports it.
type Kind struct {
	Magic uint32 // statfs f_type
	Name  string // "ext4", "fuse", "nfs", … or "unknown"
	Class Class
}

// SyncFSIsBarrier reports whether syncfs(2) on the file system makes
// durable what it flushed. Only local and memory file systems say yes;
// an unknown kind says no, so a new kind costs speed, never mail.
func (k Kind) SyncFSIsBarrier() bool { return k.Class == ClassLocal || k.Class == ClassMemory }

// String is the name with the magic number, e.g. "fuse (0x65735546)".
func (k Kind) String() string { return fmt.Sprintf("%s (%#x)", k.Name, k.Magic) }

// Why says in words why syncfs is not a barrier on k ("" when it is).
func (k Kind) Why() string {
	switch k.Class {
	case ClassFUSE:
		return "a FUSE file system: the kernel does not pass syncfs(2) to the FUSE daemon"
	case ClassNetwork:
		return "a network file system: syncfs(2) does not make the server's copy durable"
	case ClassUnknown:
		return "an unknown file system type: syncfs(2) is not known to be a durability barrier there"
	}
	return ""
}

// lookup is the table of statfs f_type magic numbers (linux/magic.h,
// statfs(2)), a switch so that it is constant. One FUSE magic covers every
// FUSE file system, virtiofs too. overlayfs' sync_fs syncs its upper file
// system, so it counts as local.
func lookup(magic uint32) (string, Class) {
	switch magic {
	case 0xEF53: // ext2, ext3 and ext4 share it
		return "ext4", ClassLocal
	case 0x58465342:
		return "xfs", ClassLocal
	case 0x9123683E:
		return "btrfs", ClassLocal
	case 0x2FC12FC1:
		return "zfs", ClassLocal
	case 0xF2F52010:
		return "f2fs", ClassLocal
	case 0xCA451A4E:
		return "bcachefs", ClassLocal
	case 0x3153464A:
		return "jfs", ClassLocal
	case 0x52654973:
		return "reiserfs", ClassLocal
	case 0x3434:
		return "nilfs2", ClassLocal
	case 0x482B:
		return "hfsplus", ClassLocal
	case 0x4D44:
		return "vfat", ClassLocal
	case 0x2011BAB0:
		return "exfat", ClassLocal
	case 0x5346544E:
		return "ntfs", ClassLocal
	case 0x794C7630:
		return "overlayfs", ClassLocal
	case 0x01021994:
		return "tmpfs", ClassMemory
	case 0x858458F6:
		return "ramfs", ClassMemory
	case 0x65735546:
		return "fuse", ClassFUSE
	case 0x6969:
		return "nfs", ClassNetwork
	case 0x517B:
		return "smb", ClassNetwork
	case 0xFF534D42:
		return "cifs", ClassNetwork
	case 0xFE534D42:
		return "smb2", ClassNetwork
	case 0x01021997:
		return "9p", ClassNetwork
	case 0x00C36400:
		return "ceph", ClassNetwork
	case 0x5346414F:
		return "afs", ClassNetwork
	case 0x6B414653:
		return "kafs", ClassNetwork
	case 0x73757245:
		return "coda", ClassNetwork
	case 0x564C:
		return "ncp", ClassNetwork
	case 0x0BD00BD0:
		return "lustre", ClassNetwork
	case 0x01161970:
		return "gfs2", ClassNetwork
	case 0x7461636F:
		return "ocfs2", ClassNetwork
	case 0x20030528:
		return "orangefs", ClassNetwork
	case 0x786F4256:
		return "vboxsf", ClassNetwork
	}
	return "unknown", ClassUnknown
}

// KindOf classifies a statfs f_type (Usage.Type). The magic numbers are
// 32-bit; on 32-bit hosts f_type is a signed int32, so only the low 32
// bits are compared.
func KindOf(fsType int64) Kind {
	magic := uint32(fsType)
	name, class := lookup(magic)
	return Kind{Magic: magic, Name: name, Class: class}
}
