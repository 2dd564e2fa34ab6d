package interop

import (
	"fmt"
	"path/filepath"
	"testing"
)

const (
	tinyDiskMount = "size=4m,mode=0700" // the tmpfs the whole data_dir lives on
	tinyDiskMsgs  = 200                 // ~1.6 KiB messages that must all be accepted
	tinyDiskPad   = 20                  // filler lines per message
)

// TestTinyDataDisk puts the whole data_dir on a 4 MiB tmpfs and starts
// the server with the default journal: the journal's preallocation is
// sized to the free space (internal/wal prealloc.go), so the disk is not
// full before the first message and every one of a few hundred small
// messages is accepted and in new/.
func TestTinyDataDisk(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.Stop(t)
	mountTmpfs(t, s, s.DataDir, tinyDiskMount)
	s.Restart(t)
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	accepted := 0
	for i := range tinyDiskMsgs {
		res := transact(c, loadRecipient, loadMessage(fmt.Sprintf("tiny%03d", i), tinyDiskPad))
		if res.err != nil {
			t.Fatalf("message %d: %v", i, res.err)
		}
		if res.reply.Code != 250 {
			t.Fatalf("message %d of ~1.6 KiB refused on a 4 MiB data disk after %d accepted: %v", i, accepted, res.reply)
		}
		accepted++
	}
	c.Cmd("QUIT", 221)
	got := scanMail(t, filepath.Join(s.Maildir(loadRecipient), "new"))
	for i := range tinyDiskMsgs {
		if id := fmt.Sprintf("tiny%03d", i); got.ids[id] != 1 {
			t.Errorf("%s in new/ %d times, want once", id, got.ids[id])
		}
	}
	t.Logf("%d of %d messages accepted on a 4 MiB data_dir", accepted, tinyDiskMsgs)
}
