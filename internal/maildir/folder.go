package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// folderMarker is the empty file that marks a Maildir++ folder
// (Courier's and Dovecot's maildirfolder): it tells a delivery agent
// and an IMAP server that the directory is a folder of the Maildir
// above it, not a mailbox of its own.
const folderMarker = "maildirfolder"

// CreateFolder makes the Maildir++ folder name (".Junk", say) of the
// Maildir parent, parent/<name>/{tmp,new,cur} with its maildirfolder
// marker, if it is not there yet, durably as Create does. Dovecot's
// maildir layout shows parent/.Junk as the IMAP folder "Junk"
// (https://doc.dovecot.org/admin_manual/mailbox_formats/maildir/).
func (n *Writer) CreateFolder(parent Dir, name string) (Dir, error) {
	if len(name) < 2 || name[0] != '.' || filepath.Base(name) != name {
		return Dir{}, fmt.Errorf("maildir: %q is not a Maildir++ folder name", name)
	}
	dir, err := create(n.fsys, filepath.Join(parent.Path, name))
	if err != nil {
		return Dir{}, err
	}
	marker := filepath.Join(dir.Path, folderMarker)
	f, err := n.fsys.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return dir, nil
	}
	if err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	if err := f.Close(); err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	if err := n.fsys.SyncDir(dir.Path); err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	return dir, nil
}
