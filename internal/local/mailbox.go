package local

import (
	"fmt"
	"path/filepath"
	"strings"

	"smtpkit/internal/maildir"
	"smtpkit/internal/userdb"
)

// dir returns (creating it on first use) the Maildir of the local mailbox
// box, MailDir/domain/local.
//
// Created Maildirs are remembered so that the hot path does not stat and
// mkdir them for every message; a failed commit forgets them again
// (forget), in case one was removed behind our back.
func (s *Store) dir(box string) (maildir.Dir, error) {
	local, domain, _ := strings.Cut(strings.ToLower(box), "@")
	if _, err := userdb.Canonical(box); err != nil || local == "" {
		return maildir.Dir{}, fmt.Errorf("mailbox name %q unusable: %w", box, err)
	}
	path := filepath.Join(s.opts.MailDir, domain, local)
	if _, ok := s.created.Load(path); ok {
		return maildir.Dir{Path: path}, nil
	}
	dir, err := s.opts.Writer.Create(path)
	if err != nil {
		return maildir.Dir{}, storageError(err)
	}
	s.created.Store(path, struct{}{})
	return dir, nil
}

// dirs returns the Maildirs of boxes, in order.
func (s *Store) dirs(boxes []string) ([]maildir.Dir, error) {
	dirs := make([]maildir.Dir, 0, len(boxes))
	for _, box := range boxes {
		dir, err := s.dir(box)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// forget drops dirs from the created-Maildir cache.
func (s *Store) forget(dirs []maildir.Dir) {
	for _, d := range dirs {
		s.created.Delete(d.Path)
	}
}
