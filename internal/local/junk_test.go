package local

import (
	"os"
	"path/filepath"
	"testing"
)

// TestQuarantine: a quarantined message lands in <mailbox>/.Junk/new of
// every mailbox (a Maildir++ folder with its maildirfolder marker), its
// inbox stays empty, and a second one reuses the folder.
func TestQuarantine(t *testing.T) {
	tests := []struct {
		name       string
		boxes      []string
		quarantine bool
	}{
		{name: "inbox", boxes: []string{"alice@example.com"}},
		{name: "junk", boxes: []string{"alice@example.com"}, quarantine: true},
		{name: "junk, two mailboxes", boxes: []string{"alice@example.com", "bob@example.com"}, quarantine: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, mail := newStore(t)
			for i := range 2 {
				w, err := s.Begin(addr("x@remote.example"), tt.boxes)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write([]byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
					t.Fatal(err)
				}
				if tt.quarantine {
					if err := w.Quarantine(); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				for _, box := range tt.boxes {
					dir := filepath.Join(mail, "example.com", box[:len(box)-len("@example.com")])
					inbox, junk := count(t, filepath.Join(dir, "new")), count(t, filepath.Join(dir, JunkFolder, "new"))
					wantInbox, wantJunk := i+1, 0
					if tt.quarantine {
						wantInbox, wantJunk = 0, i+1
					}
					if inbox != wantInbox || junk != wantJunk {
						t.Errorf("%s: %d in new/, %d in .Junk/new, want %d and %d", box, inbox, junk, wantInbox, wantJunk)
					}
					if tt.quarantine {
						for _, sub := range []string{"tmp", "cur", "maildirfolder"} {
							if _, err := os.Stat(filepath.Join(dir, JunkFolder, sub)); err != nil {
								t.Errorf("Maildir++ folder: %v", err)
							}
						}
					}
				}
			}
		})
	}
}

// count is the number of entries in dir, 0 when it does not exist.
func count(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
