package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"smtpkit/internal/smtp"
)

// TestStorageErrors: a full file system (ENOSPC) or an exhausted quota
// (EDQUOT) anywhere on the way to a committed message is 452 4.3.1, as on
// the Maildir path (RFC 3463 §3.4: X.3.1 mail system full); any other
// failure is left to the server's 451 4.3.0. Nothing of a refused message
// stays in the spool, nor comes back when the queue is opened again (a
// journal record whose files could not be written is undone by a remove
// record). The file path is tested with NoJournal, and with the journal
// for a message too large for it.
func TestStorageErrors(t *testing.T) {
	big := strings.Repeat("x", DefaultJournalMax+bufSize) // too large for the journal: spills to disk during Write
	journal := func(p string) bool { return under(p, "journal") }
	tests := []struct {
		name     string
		journal  bool // the journal is on (else NoJournal)
		errno    error
		op       string
		match    func(string) bool
		body     string
		wantCode int
		wantEnh  smtp.Enhanced
	}{
		{"message data, ENOSPC at write", false, syscall.ENOSPC, "write", func(p string) bool { return under(p, "tmp") }, big, 452, "4.3.1"},
		{"message data, ENOSPC at flush", false, syscall.ENOSPC, "write", func(p string) bool { return under(p, "tmp") }, testMessage, 452, "4.3.1"},
		{"message data, EDQUOT at fsync", false, syscall.EDQUOT, "sync", func(p string) bool { return under(p, "tmp") }, testMessage, 452, "4.3.1"},
		{"envelope, ENOSPC", false, syscall.ENOSPC, "write", envTmp, testMessage, 452, "4.3.1"},
		{"envelope rename, ENOSPC", false, syscall.ENOSPC, "rename", func(p string) bool { return under(p, "env") }, testMessage, 452, "4.3.1"},
		{"directory fsync, EIO", false, syscall.EIO, "syncdir", func(p string) bool { return under(p+"/x", "env") }, testMessage, 0, ""},
		{"envelope, EIO", false, syscall.EIO, "write", envTmp, testMessage, 0, ""},
		{"journal on, large message, ENOSPC at write", true, syscall.ENOSPC, "write", func(p string) bool { return under(p, "tmp") }, big, 452, "4.3.1"},
		{"journal on, large message, envelope EIO", true, syscall.EIO, "write", envTmp, big, 0, ""},
		{"journal record, ENOSPC", true, syscall.ENOSPC, "writeat", journal, testMessage, 452, "4.3.1"},
		{"journal fdatasync, EIO", true, syscall.EIO, "datasync", journal, testMessage, 0, ""},
		{"journaled message file, ENOSPC", true, syscall.ENOSPC, "write", func(p string) bool { return under(p, "msg") }, testMessage, 452, "4.3.1"},
		{"journaled envelope file, EDQUOT", true, syscall.EDQUOT, "write", func(p string) bool { return under(p, "env") }, testMessage, 452, "4.3.1"},
		{"journaled envelope file, EIO", true, syscall.EIO, "open", func(p string) bool { return under(p, "env") }, testMessage, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := &faultFS{}
			// The journal writes the files at Commit (not at the next
			// checkpoint) for these rows: JournalMemory -1.
			e := open(t, &recorder{}, func(o *Options) { o.FS, o.NoJournal, o.JournalMemory = ffs, !tt.journal, -1 })
			ffs.set(func(op, path string) error {
				if op == tt.op && tt.match(path) {
					return &os.PathError{Op: op, Path: path, Err: tt.errno}
				}
				return nil
			})
			w, err := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.WriteString(w, tt.body)
			if err == nil {
				_, err = w.Commit()
			} else {
				w.Abort()
			}
			if err == nil {
				t.Fatal("committed despite the failure")
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("error %v does not carry %v", err, tt.errno)
			}
			var se *smtp.Error
			isSMTP := errors.As(err, &se)
			switch {
			case tt.wantCode == 0 && isSMTP:
				t.Errorf("error %v has reply %v, want none (the server's 451 4.3.0)", err, se.Reply)
			case tt.wantCode != 0 && !isSMTP:
				t.Errorf("error %v has no reply, want %d %s", err, tt.wantCode, tt.wantEnh)
			case tt.wantCode != 0 && (se.Reply.Code != tt.wantCode || se.Reply.Enhanced != tt.wantEnh):
				t.Errorf("reply %d %s, want %d %s", se.Reply.Code, se.Reply.Enhanced, tt.wantCode, tt.wantEnh)
			}
			ffs.set(nil)
			for _, sub := range []string{"msg", "env", "tmp"} {
				if ents, _ := os.ReadDir(fmt.Sprintf("%s/%s", e.dir, sub)); len(ents) != 0 {
					t.Errorf("%s/ holds %d files after the refusal", sub, len(ents))
				}
			}
			if n := len(e.q.List()); n != 0 {
				t.Errorf("%d messages listed after the refusal", n)
			}
			e.q.Close()
			q, err := Open(Options{Dir: e.dir, Courier: &recorder{}, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			// A failed fdatasync leaves the record's durability unknown: the
			// next Open may bring the message back (a duplicate of the
			// client's retry, never a loss), as after the Maildir journal's.
			mayReturn := tt.op == "datasync"
			if n := len(q.List()); n != 0 && !mayReturn {
				t.Errorf("%d messages listed when the queue is opened again", n)
			}
		})
	}
}
