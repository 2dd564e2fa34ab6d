package cli

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"

	"smtpkit/internal/config"
	"smtpkit/internal/maildir"
	"smtpkit/internal/vfs"
)

// The start-up checks of the file systems serve writes to: which
// maildir.sync mode can keep its promise there, and whether the disk is
// nearly full.

// statfser is the part of vfs.FS the checks use (vfs.OS in serve, a fake
// in tests).
type statfser interface {
	Statfs(path string) (vfs.Usage, error)
	DeviceKey(path string) (string, error)
}

// Free space below either bound is "nearly full": 64 MiB is about one
// default-sized message (50 MiB) and the journal's preallocation; 5% is
// where df-style monitoring usually alerts, and on a large disk what is
// left there goes quickly.
const (
	lowSpaceBytes   = 64 << 20
	lowSpacePercent = 5
)

// fsFact is what statfs said about one directory a store writes to.
type fsFact struct {
	role string // "data", "maildir" or "journal"
	path string // the directory the store uses
	seen string // the directory statfs examined: path or its nearest existing parent
	dev  string // vfs.FS.DeviceKey of seen ("" if unknown)
	use  vfs.Usage
	kind vfs.Kind
	err  error // statfs failed: kind is unknown
}

// syncDecision is the maildir.sync mode in effect and why.
type syncDecision struct {
	configured, effective maildir.Sync
	because               *fsFact // the file system that forced a fallback; nil if none
}

// storePaths are the directories whose file systems matter: the data
// directory (free space), the Maildir root and every local domain's
// directory (a domain may be a mount of its own), and the journal.
func storePaths(cfg config.Config) []fsFact {
	mail := filepath.Join(cfg.DataDir, "mail")
	out := []fsFact{{role: "data", path: cfg.DataDir}, {role: "maildir", path: mail}}
	for _, name := range domainNames(cfg) {
		out = append(out, fsFact{role: "maildir", path: filepath.Join(mail, name)})
	}
	return append(out, fsFact{role: "journal", path: filepath.Join(cfg.DataDir, "journal")})
}

// examine fills in what statfs says about each path. A path that does not
// exist yet is examined through its nearest existing parent, which is
// where it will be created.
func examine(fsys statfser, facts []fsFact) []fsFact {
	for i := range facts {
		f := &facts[i]
		f.seen = f.path
		for {
			f.use, f.err = fsys.Statfs(f.seen)
			parent := filepath.Dir(f.seen)
			if !errors.Is(f.err, fs.ErrNotExist) || parent == f.seen {
				break
			}
			f.seen = parent
		}
		f.kind = vfs.KindOf(f.use.Type)
		if f.err != nil {
			f.kind = vfs.Kind{Name: "unknown", Class: vfs.ClassUnknown}
			continue
		}
		f.dev, _ = fsys.DeviceKey(f.seen)
	}
	return facts
}

// decideSync is the mode in effect for the configured one. "filesystem"
// relies on syncfs(2) of the Maildirs' file systems, and "journal" on it
// at every checkpoint (after which the journal forgets the messages):
// where syncfs is not a durability barrier (vfs.Kind.SyncFSIsBarrier:
// FUSE, network, unknown kinds) both fall back to "file", which only
// needs fsync. A journal on such a file system falls back too, though its
// own records are fdatasynced: fdatasync through FUSE or a network
// protocol is only as good as the far side, and "file" asks nothing more
// of it than the journal would.
func decideSync(configured maildir.Sync, facts []fsFact) syncDecision {
	d := syncDecision{configured: configured, effective: configured}
	if configured == maildir.SyncFile {
		return d
	}
	for i, f := range facts {
		relied := f.role == "maildir" || (f.role == "journal" && configured == maildir.SyncJournal)
		if relied && !f.kind.SyncFSIsBarrier() {
			d.effective, d.because = maildir.SyncFile, &facts[i]
			return d
		}
	}
	return d
}

// nearlyFull reports whether free space is below lowSpaceBytes or below
// lowSpacePercent of the file system. A file system that reports no size
// at all (some FUSE ones) says nothing about its space.
func nearlyFull(u vfs.Usage) bool {
	if u.Total == 0 {
		return false
	}
	return u.Free < lowSpaceBytes || u.Free*100 < u.Total*lowSpacePercent
}

// checkStorage examines the store directories, logs what it found and
// returns the maildir.sync mode to run with: the configured one, or
// "file" where the configured one cannot keep its promise (logged at warn
// with the reason). The mode in effect is always logged at info, and
// every file system nearly full at warn, once per file system.
func checkStorage(fsys statfser, cfg config.Config, log *slog.Logger) (maildir.Sync, error) {
	configured, err := maildir.ParseSync(cfg.Maildir.Sync)
	if err != nil {
		return 0, err
	}
	facts := examine(fsys, storePaths(cfg))
	d := decideSync(configured, facts)
	if b := d.because; b != nil {
		reason := b.kind.Why()
		if b.err != nil {
			reason = "statfs failed, so syncfs(2) cannot be trusted there: " + b.err.Error()
		}
		log.Warn("maildir.sync falls back to per-file fsync: syncfs is not a durability barrier on this file system",
			"configured", d.configured.String(), "effective", d.effective.String(),
			"role", b.role, "path", b.path, "filesystem", b.kind.String(), "reason", reason)
	}
	mail := facts[1] // storePaths puts the Maildir root second
	log.Info("maildir sync mode in effect", "sync", d.effective.String(), "configured", d.configured.String(),
		"maildir_filesystem", mail.kind.String())
	seen := map[string]bool{}
	for _, f := range facts {
		key := f.dev
		if key == "" {
			key = f.seen
		}
		if f.err != nil || seen[key] {
			continue
		}
		seen[key] = true
		if nearlyFull(f.use) {
			log.Warn("data file system nearly full", "path", f.seen, "role", f.role,
				"free_bytes", f.use.Free, "free_percent", freePercent(f.use), "total_bytes", f.use.Total,
				"threshold", "64 MiB or 5%")
		}
	}
	return d.effective, nil
}

// freePercent is free space as a percentage with one decimal.
func freePercent(u vfs.Usage) float64 {
	if u.Total == 0 {
		return 0
	}
	return float64(u.Free*1000/u.Total) / 10
}
