package cli

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smtpkit/internal/config"
	"smtpkit/internal/maildir"
	"smtpkit/internal/vfs"
)

// fakeStatfs answers Statfs from a table of paths; a path not in it does
// not exist. Each path is its own device.
type fakeStatfs map[string]vfs.Usage

func (f fakeStatfs) Statfs(path string) (vfs.Usage, error) {
	if u, ok := f[path]; ok {
		return u, nil
	}
	return vfs.Usage{}, &os.PathError{Op: "statfs", Path: path, Err: syscall.ENOENT}
}

func (f fakeStatfs) DeviceKey(path string) (string, error) { return path, nil }

const (
	gib  = 1 << 30
	ext4 = 0xEF53
	fuse = 0x65735546
	nfs  = 0x6969
)

func roomy(fsType int64) vfs.Usage { return vfs.Usage{Total: 100 * gib, Free: 50 * gib, Type: fsType} }

// TestDecideSync: journal and filesystem fall back to file exactly when a
// file system they rely on is one where syncfs(2) is not a barrier; file
// never changes; the journal's own file system only matters in journal
// mode.
func TestDecideSync(t *testing.T) {
	fact := func(role string, fsType int64) fsFact {
		return fsFact{role: role, path: "/d/" + role, kind: vfs.KindOf(fsType)}
	}
	for _, tc := range []struct {
		name       string
		configured maildir.Sync
		facts      []fsFact
		want       maildir.Sync
		because    string // role of the file system that forced it
	}{
		{"journal on ext4", maildir.SyncJournal, []fsFact{fact("data", ext4), fact("maildir", ext4), fact("journal", ext4)}, maildir.SyncJournal, ""},
		{"journal, Maildirs on FUSE", maildir.SyncJournal, []fsFact{fact("data", ext4), fact("maildir", fuse), fact("journal", ext4)}, maildir.SyncFile, "maildir"},
		{"journal on NFS", maildir.SyncJournal, []fsFact{fact("data", ext4), fact("maildir", ext4), fact("journal", nfs)}, maildir.SyncFile, "journal"},
		{"journal, one domain on NFS", maildir.SyncJournal, []fsFact{fact("maildir", ext4), fact("maildir", nfs), fact("journal", ext4)}, maildir.SyncFile, "maildir"},
		{"filesystem on FUSE", maildir.SyncFileSystem, []fsFact{fact("maildir", fuse)}, maildir.SyncFile, "maildir"},
		{"filesystem, journal dir on FUSE is not used", maildir.SyncFileSystem, []fsFact{fact("maildir", ext4), fact("journal", fuse)}, maildir.SyncFileSystem, ""},
		{"filesystem on tmpfs", maildir.SyncFileSystem, []fsFact{fact("maildir", 0x01021994)}, maildir.SyncFileSystem, ""},
		{"filesystem on an unknown kind", maildir.SyncFileSystem, []fsFact{fact("maildir", 0x1234)}, maildir.SyncFile, "maildir"},
		{"file on FUSE stays file", maildir.SyncFile, []fsFact{fact("maildir", fuse), fact("journal", fuse)}, maildir.SyncFile, ""},
		{"data dir alone on FUSE does not matter", maildir.SyncJournal, []fsFact{fact("data", fuse), fact("maildir", ext4), fact("journal", ext4)}, maildir.SyncJournal, ""},
	} {
		d := decideSync(tc.configured, tc.facts)
		got := ""
		if d.because != nil {
			got = d.because.role
		}
		if d.effective != tc.want || got != tc.because || d.configured != tc.configured {
			t.Errorf("%s: effective %v because %q, want %v because %q", tc.name, d.effective, got, tc.want, tc.because)
		}
	}
}

// TestNearlyFull: below 64 MiB or below 5% free is nearly full.
func TestNearlyFull(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		total, free uint64
		want        bool
	}{
		{100 * gib, 50 * gib, false},
		{100 * gib, 5 * gib, false},
		{100 * gib, 5*gib - 1, true},   // just under 5%
		{1 * gib, 63 * mib, true},      // under 64 MiB
		{1 * gib, 64 * mib, false},     // 6.25%, 64 MiB
		{4 * mib, 4 * mib, true},       // the 4 MiB tmpfs of the issue, empty
		{10000 * gib, 400 * gib, true}, // 4% of a big disk
		{100 * gib, 0, true},
		{0, 0, false}, // reports no size at all
	} {
		if got := nearlyFull(vfs.Usage{Total: tc.total, Free: tc.free}); got != tc.want {
			t.Errorf("nearlyFull(total %d, free %d) = %v, want %v", tc.total, tc.free, got, tc.want)
		}
	}
}

// TestCheckStorage: with the Statfs results injected, serve's check falls
// back from journal to file on a FUSE Maildir root and says so at warn,
// always names the mode in effect at info, examines paths that do not
// exist yet through their parent, and warns once per nearly full file
// system with the free bytes and percent.
func TestCheckStorage(t *testing.T) {
	cfg := config.DevDefault()
	cfg.DataDir = "/srv/smtpkit"
	cfg.Maildir.Sync = "journal"
	cfg.Domains = []config.Domain{{Name: "a.example"}}
	for _, tc := range []struct {
		name     string
		fs       fakeStatfs
		want     maildir.Sync
		logs     []string // each must appear exactly once
		absent   []string
		fullWarn int
	}{
		{
			name:   "local disk",
			fs:     fakeStatfs{"/srv/smtpkit": roomy(ext4), "/srv/smtpkit/mail": roomy(ext4)},
			want:   maildir.SyncJournal,
			logs:   []string{`msg="maildir sync mode in effect" sync=journal configured=journal maildir_filesystem="ext4 (0xef53)"`},
			absent: []string{"falls back", "nearly full"},
		},
		{
			name: "Maildirs on FUSE, journal not created yet",
			fs:   fakeStatfs{"/srv/smtpkit": roomy(ext4), "/srv/smtpkit/mail": roomy(fuse)},
			want: maildir.SyncFile,
			logs: []string{
				`level=WARN msg="maildir.sync falls back to per-file fsync: syncfs is not a durability barrier on this file system" configured=journal effective=file role=maildir path=/srv/smtpkit/mail filesystem="fuse (0x65735546)" reason="a FUSE file system`,
				`msg="maildir sync mode in effect" sync=file configured=journal`,
			},
			absent: []string{"nearly full"},
		},
		{
			name: "a domain's Maildirs on NFS",
			fs:   fakeStatfs{"/srv/smtpkit": roomy(ext4), "/srv/smtpkit/mail": roomy(ext4), "/srv/smtpkit/mail/a.example": roomy(nfs)},
			want: maildir.SyncFile,
			logs: []string{`path=/srv/smtpkit/mail/a.example filesystem="nfs (0x6969)" reason="a network file system`},
		},
		{
			name:     "nearly full, only the data dir exists",
			fs:       fakeStatfs{"/srv/smtpkit": {Total: 4 << 20, Free: 1 << 20, Type: 0x01021994}},
			want:     maildir.SyncJournal,
			logs:     []string{`level=WARN msg="data file system nearly full" path=/srv/smtpkit role=data free_bytes=1048576 free_percent=25 total_bytes=4194304`},
			fullWarn: 1, // mail/, mail/a.example and journal/ are that file system too
		},
		{
			name: "no file system found at all",
			fs:   fakeStatfs{},
			want: maildir.SyncFile,
			logs: []string{`reason="statfs failed, so syncfs(2) cannot be trusted there`},
		},
	} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		got, err := checkStorage(tc.fs, cfg, log)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.name, got, tc.want)
		}
		out := logs.String()
		for _, l := range tc.logs {
			if n := strings.Count(out, l); n != 1 {
				t.Errorf("%s: log has %q %d times, want once:\n%s", tc.name, l, n, out)
			}
		}
		for _, l := range tc.absent {
			if strings.Contains(out, l) {
				t.Errorf("%s: log says %q:\n%s", tc.name, l, out)
			}
		}
		if n := strings.Count(out, "nearly full"); n != tc.fullWarn {
			t.Errorf("%s: %d nearly-full warnings, want %d:\n%s", tc.name, n, tc.fullWarn, out)
		}
	}
}

// TestCheckStorageHere: on the test machine's own disk the check runs
// through vfs.OS and keeps a mode that is valid.
func TestCheckStorageHere(t *testing.T) {
	cfg := config.DevDefault()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	if _, err := checkStorage(vfs.OS{}, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	cfg.Maildir.Sync = "bogus"
	if _, err := checkStorage(vfs.OS{}, cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("an unknown maildir.sync was accepted")
	}
}
