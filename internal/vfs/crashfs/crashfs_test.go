package crashfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"testing"

	"smtpkit/internal/vfs"
	"smtpkit/internal/vfs/crashfs"
)

// step is one call of a scenario; a failing step fails the test.
type step func(fsys *crashfs.FS) error

func mkdir(p string) step { return func(f *crashfs.FS) error { return f.MkdirAll(p, 0o755) } }
func syncDir(p string) step {
	return func(f *crashfs.FS) error { return f.SyncDir(p) }
}
func syncFS(f *crashfs.FS) error { return f.SyncFS("/") }
func rename(a, b string) step {
	return func(f *crashfs.FS) error { return f.Rename(a, b) }
}
func remove(p string) step { return func(f *crashfs.FS) error { return f.Remove(p) } }

// write creates (or truncates) p with data and then, per how, syncs it:
// "" not at all, "sync", "datasync".
func write(p, data, how string) step {
	return func(f *crashfs.FS) error {
		fl, err := f.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := fl.Write([]byte(data)); err != nil {
			return err
		}
		switch how {
		case "sync":
			err = fl.Sync()
		case "datasync":
			err = fl.Datasync()
		}
		if cerr := fl.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// durable writes p with data and makes content and name durable.
func durable(p, data string) step {
	return func(f *crashfs.FS) error {
		if err := write(p, data, "sync")(f); err != nil {
			return err
		}
		return f.SyncFS("/")
	}
}

// anon writes data to an O_TMPFILE file in dir, datasyncs it when sync,
// and links it as p.
func anon(dir, p, data string, sync bool) step {
	return func(f *crashfs.FS) error {
		fl, err := f.OpenAnonymous(dir, 0o600)
		if err != nil {
			return err
		}
		defer fl.Close()
		if _, err := fl.Write([]byte(data)); err != nil {
			return err
		}
		if sync {
			if err := fl.Datasync(); err != nil {
				return err
			}
		}
		return fl.LinkTo(p)
	}
}

// want is a path's expected state after the crash: its content, or
// absent.
type want struct {
	path    string
	content string
	absent  bool
}

func TestStrictCrash(t *testing.T) {
	setup := []step{mkdir("/d/a"), mkdir("/d/b"), syncFS}
	tests := []struct {
		name  string
		steps []step
		want  []want
	}{
		{"write not synced is gone, name kept by dir sync",
			[]step{write("/d/f", "data", ""), syncDir("/d")},
			[]want{{path: "/d/f", content: ""}}},
		{"fsync without dir sync loses the new name",
			[]step{write("/d/f", "data", "sync")},
			[]want{{path: "/d/f", absent: true}}},
		{"fdatasync without dir sync loses the new name",
			[]step{write("/d/f", "data", "datasync")},
			[]want{{path: "/d/f", absent: true}}},
		{"fsync and dir sync keep both",
			[]step{write("/d/f", "data", "sync"), syncDir("/d")},
			[]want{{path: "/d/f", content: "data"}}},
		{"fdatasync and dir sync keep both",
			[]step{write("/d/f", "data", "datasync"), syncDir("/d")},
			[]want{{path: "/d/f", content: "data"}}},
		{"dir sync of another directory does not help",
			[]step{write("/d/a/f", "data", "sync"), syncDir("/d/b")},
			[]want{{path: "/d/a/f", absent: true}}},
		{"unsynced overwrite of a durable file is undone",
			[]step{durable("/d/f", "old"), write("/d/f", "new, longer", "")},
			[]want{{path: "/d/f", content: "old"}}},
		{"unsynced truncate is undone",
			[]step{durable("/d/f", "hello"), func(f *crashfs.FS) error {
				fl, err := f.OpenFile("/d/f", os.O_RDWR, 0)
				if err != nil {
					return err
				}
				defer fl.Close()
				return fl.Truncate(2)
			}},
			[]want{{path: "/d/f", content: "hello"}}},
		{"unsynced remove is undone",
			[]step{durable("/d/f", "x"), remove("/d/f")},
			[]want{{path: "/d/f", content: "x"}}},
		{"synced remove is kept",
			[]step{durable("/d/f", "x"), remove("/d/f"), syncDir("/d")},
			[]want{{path: "/d/f", absent: true}}},
		{"rename without dir sync: old mapping",
			[]step{durable("/d/f", "old"), durable("/d/tmp", "new"), rename("/d/tmp", "/d/f")},
			[]want{{path: "/d/f", content: "old"}, {path: "/d/tmp", content: "new"}}},
		{"rename with dir sync: new mapping",
			[]step{durable("/d/f", "old"), durable("/d/tmp", "new"), rename("/d/tmp", "/d/f"), syncDir("/d")},
			[]want{{path: "/d/f", content: "new"}, {path: "/d/tmp", absent: true}}},
		{"rename across directories, target synced: both names",
			[]step{durable("/d/a/x", "m"), rename("/d/a/x", "/d/b/x"), syncDir("/d/b")},
			[]want{{path: "/d/a/x", content: "m"}, {path: "/d/b/x", content: "m"}}},
		{"rename across directories, source synced: neither name",
			[]step{durable("/d/a/x", "m"), rename("/d/a/x", "/d/b/x"), syncDir("/d/a")},
			[]want{{path: "/d/a/x", absent: true}, {path: "/d/b/x", absent: true}}},
		{"rename across directories, both synced",
			[]step{durable("/d/a/x", "m"), rename("/d/a/x", "/d/b/x"), syncDir("/d/a"), syncDir("/d/b")},
			[]want{{path: "/d/a/x", absent: true}, {path: "/d/b/x", content: "m"}}},
		{"O_TMPFILE: datasync, link, dir sync",
			[]step{anon("/d", "/d/f", "body", true), syncDir("/d")},
			[]want{{path: "/d/f", content: "body"}}},
		{"O_TMPFILE: link and dir sync without datasync",
			[]step{anon("/d", "/d/f", "body", false), syncDir("/d")},
			[]want{{path: "/d/f", content: ""}}},
		{"O_TMPFILE: no dir sync",
			[]step{anon("/d", "/d/f", "body", true)},
			[]want{{path: "/d/f", absent: true}}},
		{"new directory needs its parent synced",
			[]step{mkdir("/d/n/m"), durable("/d/n/m/f", "x")},
			[]want{{path: "/d/n/m/f", content: "x"}}},
		{"new directory lost without parent sync",
			[]step{mkdir("/d/n/m"), write("/d/n/m/f", "x", "sync"), syncDir("/d/n/m"), syncDir("/d/n")},
			[]want{{path: "/d/n", absent: true}}},
		{"hard link survives with its own dir sync",
			[]step{durable("/d/a/x", "m"), func(f *crashfs.FS) error { return f.Link("/d/a/x", "/d/b/y") }, syncDir("/d/b")},
			[]want{{path: "/d/a/x", content: "m"}, {path: "/d/b/y", content: "m"}}},
		{"syncfs makes everything durable",
			[]step{mkdir("/d/n"), write("/d/n/f", "x", ""), rename("/d/n/f", "/d/a/g"), syncFS},
			[]want{{path: "/d/a/g", content: "x"}, {path: "/d/n/f", absent: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := crashfs.New(crashfs.Options{})
			run(t, fsys, append(append([]step{}, setup...), tt.steps...))
			check(t, fsys.Crash(), tt.want)
		})
	}
}

func run(t *testing.T, fsys *crashfs.FS, steps []step) {
	t.Helper()
	for i, s := range steps {
		if err := s(fsys); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func check(t *testing.T, fsys *crashfs.FS, wants []want) {
	t.Helper()
	for _, w := range wants {
		got, err := fsys.ReadFile(w.path)
		switch {
		case w.absent && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("%s: got %q, %v; want absent", w.path, got, err)
		case !w.absent && (err != nil || string(got) != w.content):
			t.Errorf("%s: got %q, %v; want %q", w.path, got, err, w.content)
		}
	}
}

func TestOSLikeErrors(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{})
	run(t, fsys, []step{mkdir("/d/sub"), write("/d/f", "abc", ""), write("/d/sub/g", "", "")})
	ro, err := fsys.OpenFile("/d/f", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	openErr := func(name string, flag int) error {
		f, err := fsys.OpenFile(name, flag, 0o600)
		if err == nil {
			f.Close()
		}
		return err
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"open missing", openErr("/d/none", os.O_RDONLY), fs.ErrNotExist},
		{"open in missing dir", openErr("/none/f", os.O_RDWR|os.O_CREATE), fs.ErrNotExist},
		{"O_EXCL on existing", openErr("/d/f", os.O_RDWR|os.O_CREATE|os.O_EXCL), fs.ErrExist},
		{"open through a file", openErr("/d/f/x", os.O_RDONLY), syscall.ENOTDIR},
		{"open dir for writing", openErr("/d", os.O_WRONLY), syscall.EISDIR},
		{"write read-only", func() error { _, err := ro.Write([]byte("x")); return err }(), syscall.EBADF},
		{"mkdir existing", fsys.Mkdir("/d", 0o755), fs.ErrExist},
		{"mkdirall over a file", fsys.MkdirAll("/d/f/x", 0o755), syscall.ENOTDIR},
		{"remove missing", fsys.Remove("/d/none"), fs.ErrNotExist},
		{"remove non-empty dir", fsys.Remove("/d/sub"), syscall.ENOTEMPTY},
		{"removeall missing", fsys.RemoveAll("/d/none"), nil},
		{"readdir of a file", func() error { _, err := fsys.ReadDir("/d/f"); return err }(), syscall.ENOTDIR},
		{"stat missing", func() error { _, err := fsys.Stat("/d/none"); return err }(), fs.ErrNotExist},
		{"readfile of dir", func() error { _, err := fsys.ReadFile("/d"); return err }(), syscall.EISDIR},
		{"rename missing", fsys.Rename("/d/none", "/d/x"), fs.ErrNotExist},
		{"rename file over dir", fsys.Rename("/d/f", "/d/sub"), syscall.EISDIR},
		{"rename dir into itself", fsys.Rename("/d", "/d/sub/d"), syscall.EINVAL},
		{"link over existing", fsys.Link("/d/f", "/d/sub/g"), fs.ErrExist},
		{"link a directory", fsys.Link("/d/sub", "/d/sub2"), syscall.EPERM},
	}
	for _, tt := range tests {
		switch {
		case tt.want == nil && tt.err != nil:
			t.Errorf("%s: %v, want no error", tt.name, tt.err)
		case tt.want != nil && !errors.Is(tt.err, tt.want):
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
		var pe *fs.PathError
		var le *os.LinkError
		if tt.err != nil && !errors.As(tt.err, &pe) && !errors.As(tt.err, &le) {
			t.Errorf("%s: %T is neither *fs.PathError nor *os.LinkError", tt.name, tt.err)
		}
	}
}

func TestFileSemantics(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{})
	run(t, fsys, []step{mkdir("/d"), write("/d/f", "hello", "")})
	f, err := fsys.OpenFile("/d/f", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on O_APPEND succeeded")
	}
	f.Close()
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	rw, err := fsys.OpenFile("/d/f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.WriteAt([]byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.WriteAt([]byte("!"), 13); err != nil { // a hole of zeros at 11, 12
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rw)
	if want := "Jello world\x00\x00!"; string(got) != want {
		t.Errorf("content %q, want %q", got, want)
	}
	buf := make([]byte, 4)
	if n, err := rw.ReadAt(buf, 12); n != 2 || err != io.EOF {
		t.Errorf("ReadAt past end = %d, %v", n, err)
	}
	fi, err := fsys.Stat("/d/f")
	if err != nil || fi.Size() != 14 || fi.IsDir() || fi.Name() != "f" {
		t.Errorf("Stat = %v, %v", fi, err)
	}
	// Hard links share the inode.
	if err := fsys.Link("/d/f", "/d/g"); err != nil {
		t.Fatal(err)
	}
	rw.WriteAt([]byte("Y"), 0)
	if g, _ := fsys.ReadFile("/d/g"); g[0] != 'Y' {
		t.Errorf("link does not share the content: %q", g)
	}
	// O_TRUNC empties; ReadDir sorts.
	run(t, fsys, []step{write("/d/f", "", "")})
	if g, _ := fsys.ReadFile("/d/g"); len(g) != 0 {
		t.Errorf("after O_TRUNC: %q", g)
	}
	ents, err := fsys.ReadDir("/d")
	if err != nil || len(ents) != 2 || ents[0].Name() != "f" || ents[1].Name() != "g" {
		t.Errorf("ReadDir = %v, %v", ents, err)
	}
	if err := fsys.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/d"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveAll: %v", err)
	}
}

func TestNoAnonymous(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{NoAnonymous: true})
	if _, err := fsys.OpenAnonymous("/", 0o600); !errors.Is(err, vfs.ErrUnsupported) {
		t.Fatalf("OpenAnonymous = %v, want vfs.ErrUnsupported", err)
	}
	// An unlinked named file cannot get a name again; an O_TMPFILE can.
	fsys = crashfs.New(crashfs.Options{})
	f, err := fsys.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys.Remove("/f")
	if err := f.LinkTo("/g"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LinkTo of an unlinked file = %v", err)
	}
}

func TestCapacity(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{Capacity: 16 << 10})
	u, err := fsys.Statfs("/")
	if err != nil || u.Total != 16<<10 || u.Free != 16<<10 {
		t.Fatalf("Statfs = %+v, %v", u, err)
	}
	f, err := fsys.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 10<<10)); err != nil { // 3 blocks
		t.Fatal(err)
	}
	if u, _ := fsys.Statfs("/"); u.Free != 4<<10 {
		t.Errorf("Free = %d after 10 KiB, want 4096", u.Free)
	}
	n, err := f.Write(make([]byte, 8<<10))
	var pe *fs.PathError
	if n != 0 || !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) {
		t.Errorf("write past capacity = %d, %v; want 0, ENOSPC in *PathError", n, err)
	}
	if err := f.Truncate(32 << 10); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("truncate past capacity = %v", err)
	}
	if _, err := f.Write(make([]byte, 4<<10)); err != nil { // the rest of the 3rd block and the 4th
		t.Errorf("write that fits: %v", err)
	}
	// Space of a removed file comes back once it is closed.
	fsys.Remove("/f")
	if u, _ := fsys.Statfs("/"); u.Free != 0 {
		t.Errorf("Free = %d with the removed file open", u.Free)
	}
	f.Close()
	if u, _ := fsys.Statfs("/"); u.Free != 16<<10 {
		t.Errorf("Free = %d after close, want all", u.Free)
	}
}

func TestMounts(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{Mounts: []string{"/spool"}})
	run(t, fsys, []step{mkdir("/spool/q"), mkdir("/mail"), syncDir("/")})
	k1, _ := fsys.DeviceKey("/spool/q")
	k2, _ := fsys.DeviceKey("/mail")
	if k1 == k2 || k1 == "" {
		t.Errorf("DeviceKey: %q and %q", k1, k2)
	}
	run(t, fsys, []step{write("/spool/q/a", "q", ""), write("/mail/b", "m", "")})
	if err := fsys.Rename("/spool/q/a", "/mail/a"); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("rename across mounts = %v", err)
	}
	if err := fsys.SyncFS("/spool/q"); err != nil {
		t.Fatal(err)
	}
	check(t, fsys.Crash(), []want{{path: "/spool/q/a", content: "q"}, {path: "/mail/b", absent: true}})
}

// TestCrashAfter runs a workload, counts its steps, and crashes it at
// every step boundary: exactly n steps took effect, every later call
// failed with EIO, and the crashed FS is usable.
func TestCrashAfter(t *testing.T) {
	workload := []step{mkdir("/d"), write("/d/f", "abc", "sync"), syncDir("/"), syncDir("/d"), rename("/d/f", "/d/g"), syncDir("/d")}
	probe := crashfs.New(crashfs.Options{})
	run(t, probe, workload)
	total := probe.Ops()
	if total != 8 { // mkdir, create, write, fsync, 2 dir syncs, rename, dir sync; close is none
		t.Fatalf("workload has %d steps, want 8", total)
	}
	for n := int64(0); n <= total; n++ {
		fsys := crashfs.New(crashfs.Options{})
		fsys.CrashAfter(n)
		var failed error
		for _, s := range workload {
			if err := s(fsys); err != nil {
				failed = err
				break
			}
		}
		if got := fsys.Ops(); got != n {
			t.Errorf("n=%d: %d steps took effect", n, got)
		}
		if n < total && (!errors.Is(failed, syscall.EIO) || !fsys.Frozen()) {
			t.Errorf("n=%d: workload error %v, frozen %v; want EIO", n, failed, fsys.Frozen())
		}
		if n < total {
			if _, err := fsys.Stat("/"); !errors.Is(err, syscall.EIO) {
				t.Errorf("n=%d: read after the crash point: %v", n, err)
			}
		}
		post := fsys.Crash()
		// /d/f's name is durable after step 6 (the dir sync of /d), the
		// rename after the last.
		var wants []want
		switch {
		case n >= total:
			wants = []want{{path: "/d/g", content: "abc"}, {path: "/d/f", absent: true}}
		case n >= 6:
			wants = []want{{path: "/d/f", content: "abc"}, {path: "/d/g", absent: true}}
		default:
			wants = []want{{path: "/d/f", absent: true}, {path: "/d/g", absent: true}}
		}
		check(t, post, wants)
		run(t, post, []step{durable("/after", "ok")})
	}
}

func TestDeadAfterCrash(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{})
	f, err := fsys.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	post := fsys.Crash()
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Errorf("write on a file of the crashed FS: %v", err)
	}
	if _, err := fsys.Stat("/"); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat on the crashed FS: %v", err)
	}
	if _, err := post.Stat("/"); err != nil {
		t.Errorf("stat on the new FS: %v", err)
	}
}

// TestRandomCrash checks, over many seeds, that the random mode only
// produces states a file system may leave — durable data intact, appended
// pages whole or zero, a rename within a directory atomic — and that it
// produces each of them.
func TestRandomCrash(t *testing.T) {
	a := bytes.Repeat([]byte("A"), 4096)
	seen := make(map[string]bool)
	for seed := uint64(0); seed < 300; seed++ {
		fsys := crashfs.New(crashfs.Options{})
		run(t, fsys, []step{mkdir("/d"), durable("/d/f", "old"), durable("/d/tmp", "new"), durable("/d/log", string(a))})
		run(t, fsys, []step{rename("/d/tmp", "/d/f"), write("/d/n", "x", "")})
		lf, err := fsys.OpenFile("/d/log", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		lf.Write(bytes.Repeat([]byte("B"), 8192))
		post := fsys.CrashRandom(seed)

		f, _ := post.ReadFile("/d/f")
		_, tmpErr := post.Stat("/d/tmp")
		switch {
		case string(f) == "old" && tmpErr == nil:
			seen["rename undone"] = true
		case string(f) == "new" && errors.Is(tmpErr, fs.ErrNotExist):
			seen["rename done"] = true
		default:
			t.Fatalf("seed %d: rename not atomic: f=%q tmp err %v", seed, f, tmpErr)
		}
		if _, err := post.Stat("/d/n"); err == nil {
			seen["unsynced create kept"] = true
		}

		log, err := post.ReadFile("/d/log")
		if err != nil || len(log)%4096 != 0 || len(log) == 0 || len(log) > 12288 || !bytes.Equal(log[:4096], a) {
			t.Fatalf("seed %d: log of %d bytes, %v", seed, len(log), err)
		}
		desc := fmt.Sprintf("log %d:", len(log))
		for p := 4096; p < len(log); p += 4096 {
			page := log[p : p+4096]
			switch {
			case bytes.Equal(page, bytes.Repeat([]byte("B"), 4096)):
				desc += "B"
			case bytes.Equal(page, make([]byte, 4096)):
				desc += "0"
			default:
				t.Fatalf("seed %d: page at %d is torn", seed, p)
			}
		}
		seen[desc] = true
	}
	for _, k := range []string{"rename undone", "rename done", "unsynced create kept",
		"log 4096:", "log 8192:B", "log 12288:BB", "log 12288:00", "log 12288:B0"} {
		if !seen[k] {
			t.Errorf("never saw %q (saw %v)", k, seen)
		}
	}
}

// TestConcurrent is for -race: writers, syncs and a crash at once.
func TestConcurrent(t *testing.T) {
	fsys := crashfs.New(crashfs.Options{})
	run(t, fsys, []step{mkdir("/d"), syncFS})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				p := fmt.Sprintf("/d/%d-%d", i, j)
				if write(p, "x", "sync")(fsys) != nil || fsys.SyncDir("/d") != nil {
					return
				}
			}
		}()
	}
	post := fsys.CrashRandom(1)
	wg.Wait()
	if _, err := post.ReadDir("/d"); err != nil {
		t.Fatal(err)
	}
}
