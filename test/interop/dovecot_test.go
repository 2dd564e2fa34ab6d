package interop

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dovecotIP is the IMAP server's address (the verify range, 127.14.4.0/24).
const dovecotIP = "127.14.4.30"

// dovecotUID runs Dovecot's mail processes: Dovecot refuses mail access
// as root, so the test gives it a copy of the Maildir owned by nobody.
const dovecotUID = 65534

// dovecotFolders serves a copy of the Maildir box over IMAP with Dovecot
// (Debian dovecot-imapd, its default Maildir++ layout and \Junk on the
// folder Junk, as docs/authentication.md suggests) and has Python's
// imaplib list the folders and the Subjects in INBOX and Junk. It returns
// the LIST lines and the Subjects per folder.
func dovecotFolders(t *testing.T, box string) ([]string, map[string][]string) {
	t.Helper()
	dovecot := Need(t, "dovecot")
	python := NeedPython(t)
	// Dovecot's mail processes run as nobody: the directories above the
	// copy must be searchable (t.TempDir's are 0700, root's).
	dir, err := os.MkdirTemp("", "smtpkit-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mail := filepath.Join(dir, "mail")
	if out, err := exec.Command("cp", "-a", box, mail).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mail, home} {
		if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", dovecotUID, dovecotUID), p).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	l, err := net.Listen("tcp", dovecotIP+":0") // a free port, released for Dovecot
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = %[2]s
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:%[3]s
passdb {
  driver = static
  args = password=imap-pw
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[5]d home=%[4]s
}
service imap-login {
  inet_listener imap {
    address = %[2]s
    port = %[6]d
  }
}
namespace inbox {
  inbox = yes
  mailbox Junk {
    special_use = \Junk
  }
}
`, dir, dovecotIP, mail, home, dovecotUID, port)
	t.Cleanup(runDovecot(t, dovecot, dir, conf, "dovecot"))
	script := `
import imaplib, json, sys, time
deadline = time.time() + 10
while True:
    try:
        c = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.05)
c.login("alice", "imap-pw")
typ, lines = c.list()
out = {"list": [l.decode() for l in lines], "folders": {}}
for folder in ("INBOX", "Junk"):
    typ, _ = c.select(folder, readonly=True)
    if typ != "OK":
        sys.exit("SELECT %s: %s" % (folder, typ))
    typ, ids = c.search(None, "ALL")
    subjects = []
    for i in ids[0].split():
        typ, data = c.fetch(i, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects.append(data[0][1].decode().strip().removeprefix("Subject: "))
    out["folders"][folder] = sorted(subjects)
c.logout()
print(json.dumps(out))
`
	res := mustRun(t, nil, python, "-c", script, dovecotIP, fmt.Sprint(port))
	var out struct {
		List    []string            `json:"list"`
		Folders map[string][]string `json:"folders"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		t.Fatalf("imaplib printed %q: %v", res.Stdout, err)
	}
	return out.List, out.Folders
}

// hasJunkFolder reports whether the LIST lines name Junk with \Junk.
func hasJunkFolder(list []string) bool {
	for _, l := range list {
		if strings.Contains(l, `\Junk`) && strings.HasSuffix(l, " Junk") {
			return true
		}
	}
	return false
}

// runDovecot writes conf to dir/dovecot.conf and starts Dovecot on it in
// the foreground, in a process group of its own. The returned stop ends
// it (SIGTERM, the master stops its children; SIGKILL to the group after
// 10 s) and, when the test failed, logs its output and dir/dovecot.log
// under label.
func runDovecot(t *testing.T, dovecot, dir, conf, label string) (stop func()) {
	t.Helper()
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dovecot, "-F", "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("%s:\n%s%s", label, logs.String(), b)
		}
	}
}
