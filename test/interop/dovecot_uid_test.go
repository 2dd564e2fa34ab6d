package interop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dovecotUIDIP is the address of TestDovecotMailUID (issue #19's range).
const dovecotUIDIP = "127.17.5.30"

// TestDovecotMailUID checks the README's Dovecot lines: smtpkit writes
// Maildir files 0600 and directories 0700, so Dovecot reads them only as
// smtpkit's user — mail_uid/mail_gid naming it, and first_valid_uid low
// enough for a system user. A message delivered by smtpkit (swaks on the
// mx listener) is given, with its modes, to the system user "mail" (uid
// 8, below Dovecot's default first_valid_uid of 500), as a package install
// gives it to "smtpkit"; Python's imaplib logs in as
// postmaster@test.example to Dovecot with mail_location =
// maildir:<data_dir>/mail/%d/%n. With the README's lines it finds the
// message; without first_valid_uid Dovecot refuses the mail access.
func TestDovecotMailUID(t *testing.T) {
	dovecot := Need(t, "dovecot")
	swaks := Need(t, "swaks")
	python := NeedPython(t)
	mailUser, err := user.Lookup("mail")
	if err != nil {
		t.Fatalf("no system user mail: %v", err)
	}
	uid, _ := strconv.Atoi(mailUser.Uid)

	s := StartServer(t, ServerOptions{IP: "127.17.5.31"})
	rcpt := "postmaster@test.example"
	msg := testMessage("dovecot-uid")
	mustRun(t, nil, swaks, append(swaksArgs(s, s.MX, "sender@b.example", rcpt), "--data", swaksData(t, msg))...)
	s.WaitMessages(t, rcpt, 1)

	// The data dir as a package install has it, owned by the service user.
	root, err := os.MkdirTemp("", "smtpkit-dovecot-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(s.DataDir, "mail"), data).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	box := filepath.Join(data, "mail", "test.example", "postmaster")
	checkModes(t, box)
	if out, err := exec.Command("chown", "-R", mailUser.Uid+":"+mailUser.Gid, data).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}

	readme := fmt.Sprintf("mail_location = maildir:%s/mail/%%d/%%n\nmail_uid = mail\nmail_gid = mail\nfirst_valid_uid = %d\n", data, uid)
	subjects, errOut := dovecotINBOX(t, dovecot, python, root, "readme", readme)
	if len(subjects) != 1 || !strings.Contains(subjects[0], "dovecot-uid") {
		t.Errorf("with the README's lines: INBOX %q, %s", subjects, errOut)
	}
	// Without first_valid_uid (default 500) the same setup is refused.
	noFirst := fmt.Sprintf("mail_location = maildir:%s/mail/%%d/%%n\nmail_uid = mail\nmail_gid = mail\n", data)
	if subjects, errOut := dovecotINBOX(t, dovecot, python, root, "nofirst", noFirst); len(subjects) != 0 || errOut == "" {
		t.Errorf("without first_valid_uid: INBOX %q, error %q; want a refusal", subjects, errOut)
	}
	if log, _ := os.ReadFile(filepath.Join(root, "nofirst", "dovecot.log")); !bytes.Contains(log, []byte("first_valid_uid")) {
		t.Errorf("Dovecot's log does not name first_valid_uid as the reason:\n%s", log)
	}
}

// checkModes checks that smtpkit made the Maildir's directories 0700 and
// its files 0600 (the reason Dovecot must run as smtpkit's user).
func checkModes(t *testing.T, box string) {
	t.Helper()
	filepath.Walk(box, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
}

// dovecotINBOX runs a Dovecot of its own with the mail lines given (in
// root/name) and has imaplib log in and read the Subjects of INBOX; it
// returns them, or imaplib's error.
func dovecotINBOX(t *testing.T, dovecot, python, root, name, mailConf string) ([]string, string) {
	t.Helper()
	dir := filepath.Join(root, name)
	for _, d := range []string{dir, filepath.Join(dir, "home")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", dovecotUIDIP+":0")
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
%[3]s
passdb {
  driver = static
  args = password=imap-pw
}
userdb {
  driver = static
  args = home=%[1]s/home
}
service imap-login {
  inet_listener imap {
    address = %[2]s
    port = %[4]d
  }
}
`, dir, dovecotUIDIP, mailConf, port)
	defer runDovecot(t, dovecot, dir, conf, "dovecot "+name)()
	script := `
import imaplib, sys, time
deadline = time.time() + 10
while True:
    try:
        c = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.05)
try:
    c.login("postmaster@test.example", "imap-pw")
    typ, data = c.select("INBOX", readonly=True)
    if typ != "OK":
        sys.exit("SELECT: %s %s" % (typ, data))
    typ, ids = c.search(None, "ALL")
    for i in ids[0].split():
        typ, data = c.fetch(i, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        print(data[0][1].decode().strip())
except imaplib.IMAP4.error as e:
    sys.exit("IMAP: %s" % e)
`
	r := runPeer(t, nil, python, "-c", script, dovecotUIDIP, strconv.Itoa(port))
	if r.Err != nil {
		return nil, strings.TrimSpace(r.Stderr)
	}
	var subjects []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line != "" {
			subjects = append(subjects, line)
		}
	}
	return subjects, ""
}
