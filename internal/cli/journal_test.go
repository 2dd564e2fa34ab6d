package cli

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/maildir"
	"smtpkit/internal/wal"
)

// TestLeftoverJournalReplayed: a journal left by a run in journal mode is
// replayed at start whatever mode runs now — falling back to "file" on a
// FUSE file system, or a config changed to "file" — so a message
// acknowledged from the journal and lost with the page cache comes back.
func TestLeftoverJournalReplayed(t *testing.T) {
	msg := []byte("Subject: kept\r\n\r\nacknowledged from the journal\r\n")
	for _, mode := range []maildir.Sync{maildir.SyncFile, maildir.SyncFileSystem, maildir.SyncJournal} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := config.DevDefault()
			cfg.DataDir = t.TempDir()
			jl, err := wal.Open(filepath.Join(cfg.DataDir, "journal"))
			if err != nil {
				t.Fatal(err)
			}
			before := maildir.NewWriter(nil)
			before.SetBootID("6f1c3b1e-0000-4000-8000-00000000000a") // not this boot: a power loss
			before.SetSync(maildir.SyncJournal)
			before.SetJournal(jl, time.Hour, nil) // no checkpoint before the "crash"
			box, err := before.Create(filepath.Join(cfg.DataDir, "mail", "localhost", "user"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := before.NewMessage(box)
			if err != nil {
				t.Fatal(err)
			}
			d.Write(msg)
			paths, err := d.Commit([]maildir.Dir{box})
			if err != nil {
				t.Fatal(err)
			}
			jl.Close()          // the crash: the journal is not checkpointed
			os.Remove(paths[0]) // the file was lost with the page cache

			var logs bytes.Buffer
			writer, err := openMaildirs(cfg, mode, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer writer.CloseJournal()
			es, err := os.ReadDir(filepath.Join(box.Path, "new"))
			if err != nil || len(es) != 1 {
				t.Fatalf("new/ holds %v (%v), want the message once; log:\n%s", es, err, logs.String())
			}
			if got, _ := os.ReadFile(filepath.Join(box.Path, "new", es[0].Name())); !bytes.Equal(got, msg) {
				t.Errorf("replayed message %q", got)
			}
			if !strings.Contains(logs.String(), "journal replayed after an unclean stop") {
				t.Errorf("no replay logged:\n%s", logs.String())
			}
		})
	}
}
