package wal

import (
	"bytes"
	"fmt"
	"testing"

	"smtpkit/internal/vfs"
	"smtpkit/internal/vfs/crashfs"
)

// lyingStatfs reports a free space far above the real one, as a file
// system shared with other writers may between the statfs and the write.
type lyingStatfs struct{ *crashfs.FS }

func (l lyingStatfs) Statfs(string) (vfs.Usage, error) {
	return vfs.Usage{Total: 1 << 40, Free: 1 << 40}, nil
}

// TestPreallocationFitsTheDisk: a new segment's preallocation is sized to
// the free space (at most 1/8 of it, none under 64 KiB), and one that
// runs out of space is dropped instead of failing: on a small disk the
// log takes records until the records themselves fill it.
func TestPreallocationFitsTheDisk(t *testing.T) {
	tests := []struct {
		name     string
		capacity int64
		lie      bool  // Statfs reports 1 TiB free
		prealloc int64 // Options.PreallocSize
		want     int64 // size of the first segment file after Open
		records  int   // 1 KiB records that must then be accepted
	}{
		{"large disk: the default", 1 << 30, false, 0, DefaultPreallocSize, 100},
		{"4 MiB disk: an eighth of it", 4 << 20, false, 0, 512 << 10, 3000},
		{"256 KiB disk: none", 256 << 10, false, 0, 0, 150},
		{"configured smaller", 1 << 30, false, 128 << 10, 128 << 10, 100},
		{"configured none", 1 << 30, false, -1, 0, 100},
		{"statfs wrong, write fails: none", 1 << 20, true, 0, 0, 700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfs := crashfs.New(crashfs.Options{Capacity: tt.capacity})
			var fsys vfs.FS = cfs
			if tt.lie {
				fsys = lyingStatfs{cfs}
			}
			l, err := OpenOptions(crashDir, Options{FS: fsys, PreallocSize: tt.prealloc})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := fsys.Stat(l.cur.path)
			if err != nil || fi.Size() != tt.want {
				t.Fatalf("first segment of %d bytes (%v), want %d", fi.Size(), err, tt.want)
			}
			rec := bytes.Repeat([]byte("r"), 1024-headerSize)
			for i := range tt.records {
				tk, err := l.Append(rec)
				if err != nil {
					u, _ := cfs.Statfs("/")
					t.Fatalf("append %d of %d: %v (free %d of %d)", i, tt.records, err, u.Free, u.Total)
				}
				tk.Done()
			}
		})
	}
}

// TestFullDiskFailsTheAppendNotTheLog: when the disk is full the append
// that does not fit fails, and once space is back appends work again.
func TestFullDiskFailsTheAppendNotTheLog(t *testing.T) {
	cfs := crashfs.New(crashfs.Options{Capacity: 256 << 10})
	l, err := OpenOptions(crashDir, Options{FS: cfs, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Fill the disk with something else.
	if err := vfs.Write(cfs, "/filler", make([]byte, 240<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 4000)
	var failed error
	for i := 0; i < 100 && failed == nil; i++ {
		tk, err := l.Append(rec)
		if err != nil {
			failed = err
			break
		}
		tk.Done()
	}
	if failed == nil {
		t.Fatal("appends never failed on a full disk")
	}
	if err := cfs.Remove("/filler"); err != nil {
		t.Fatal(err)
	}
	tk, err := l.Append([]byte(fmt.Sprint("after ", failed)))
	if err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	tk.Done()
}
