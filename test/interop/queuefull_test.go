package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

// queueFullPad is TestQueueDiskFull's filler lines: ~270 KiB messages,
// past the default [outbound] journal_max (256 KiB), so that each takes
// the file path into the tmpfs (the journal's open segment stays on the
// file system the server started on; its full-disk errors are
// internal/queue's TestStorageErrors).
const queueFullPad = 3500

// TestQueueDiskFull puts the outbound queue on a 2 MiB tmpfs and submits
// ~270 KiB messages for a remote recipient (whose next hop does not answer,
// so they stay queued) until the server refuses one: the refusal is
// 452 4.3.1, insufficient system storage, as on the Maildir path (it was
// 451 4.3.0), every acknowledged message is in the queue whole, and
// nothing is left in queue/tmp. After space is freed the same session
// submits again.
func TestQueueDiskFull(t *testing.T) {
	s := startSender(t, outConf{routes: []outRoute{{domain: "far.example", host: freeAddr(t), tls: "none"}}})
	spool := filepath.Join(s.DataDir, "queue")
	mountTmpfs(t, s, spool, diskFullMount)
	for _, d := range []string{"msg", "env", "tmp"} { // the server opened the spool before the mount
		if err := os.Mkdir(filepath.Join(spool, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ballast := filepath.Join(spool, "ballast") // removed later to make room
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, s.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	submit := func(id string) client.Result {
		ctx, cancel := context.WithTimeout(context.Background(), outWait)
		defer cancel()
		msg := fmt.Sprintf("From: <%s>\r\nTo: <bob@far.example>\r\nSubject: %s\r\n\r\n%s%s",
			outSender, id, strings.Repeat(strings.Repeat("q", 76)+"\r\n", queueFullPad), lastLine(id))
		res, err := c.Send(ctx, client.Envelope{From: outSender, To: []string{"bob@far.example"}}, bytes.NewReader([]byte(msg)))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return res
	}
	acked := 0
	var refused client.Result
	for i := range diskFullMaxMsgs {
		res := submit(fmt.Sprintf("q%03d", i))
		if res.Data != nil {
			refused = res
			break
		}
		acked++
	}
	t.Logf("%d messages of ~270 KiB queued, then %d %s %s", acked, refused.Reply.Code, refused.Reply.Enhanced, refused.Reply.Text())
	switch {
	case refused.Data == nil:
		t.Fatalf("all %d messages queued on a 2 MiB file system", diskFullMaxMsgs)
	case refused.Reply.Code != 452 || refused.Reply.Enhanced != "4.3.1":
		t.Errorf("a full queue answered %d %s %q, want 452 4.3.1", refused.Reply.Code, refused.Reply.Enhanced, refused.Reply.Text())
	}
	msgs := listFiles(t, filepath.Join(spool, "msg"))
	if envs := listFiles(t, filepath.Join(spool, "env")); len(msgs) != acked || len(envs) != acked {
		t.Errorf("queue holds %d messages and %d envelopes, want the %d acknowledged", len(msgs), len(envs), acked)
	}
	for _, name := range msgs {
		data, err := os.ReadFile(filepath.Join(spool, "msg", name))
		if err != nil || !bytes.HasSuffix(data, []byte("\r\n")) || !bytes.Contains(data, []byte("end of q")) {
			t.Errorf("queued %s is not whole (%d bytes, %v)", name, len(data), err)
		}
	}
	for _, name := range listFiles(t, filepath.Join(spool, "tmp")) {
		if !strings.HasSuffix(name, ".env") { // an envelope rewrite of a retry may be in flight
			t.Errorf("queue/tmp holds the message %s after the refusal", name)
		}
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if res := submit("after-free"); res.Data != nil {
		t.Errorf("after freeing space: %v", res.Data)
	}
	c.Quit()
}
