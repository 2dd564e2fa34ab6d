package local

import (
	"path/filepath"

	"smtpkit/internal/maildir"
)

// JunkFolder is the Maildir++ folder quarantined mail is delivered to:
// <mailbox>/.Junk, which Dovecot shows as the IMAP folder "Junk" (and,
// with the usual special-use configuration, as \Junk, RFC 6154).
const JunkFolder = ".Junk"

// Quarantine makes Commit deliver the message into the JunkFolder of
// each of the Writer's mailboxes instead of its inbox (new/), creating
// the folders as needed; a DMARC policy of p=quarantine asks for this
// (RFC 7489 §6.3, "quarantine"). Call it before Commit. The message
// written so far is kept: only where it is linked changes. A failure to
// make a folder is 452 4.3.1.
func (w *Writer) Quarantine() error {
	junk := make([]maildir.Dir, 0, len(w.dirs))
	for _, d := range w.dirs {
		j, err := w.s.junkDir(d)
		if err != nil {
			return err
		}
		junk = append(junk, j)
	}
	w.dirs = junk
	return nil
}

// junkDir returns (creating it on first use) the JunkFolder of the
// Maildir box; made folders are remembered, as dir does for mailboxes.
func (s *Store) junkDir(box maildir.Dir) (maildir.Dir, error) {
	path := filepath.Join(box.Path, JunkFolder)
	if _, ok := s.created.Load(path); ok {
		return maildir.Dir{Path: path}, nil
	}
	dir, err := s.opts.Writer.CreateFolder(box, JunkFolder)
	if err != nil {
		return maildir.Dir{}, storageError(err)
	}
	s.created.Store(path, struct{}{})
	return dir, nil
}
