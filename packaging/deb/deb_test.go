// Package deb holds the Debian package's build script and maintainer
// scripts; this test builds the package, installs it on this machine with
// dpkg, checks what it installed, runs the unit's ExecStart command line
// as the unit's user on loopback, and purges it again.
//
// It changes the machine (a package, /etc/smtpkit, a system user, the
// sendmail alternative), so it runs only with SMTPKIT_DEB_TEST=1, as root:
// scripts/test.sh runs it as a step of its own, after the parallel tests.
package deb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
)

// The loopback address of the smoke test (issue #19's range).
const smokeIP = "127.17.5.10"

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// sendmailState is what /usr/sbin/sendmail is before the test: absent, or
// a file (or link) of another MTA that the package must leave alone.
type sendmailState struct {
	present bool
	target  string // the link's target, "" for a plain file
	data    []byte // a plain file's contents
}

func readSendmail(t *testing.T) sendmailState {
	fi, err := os.Lstat("/usr/sbin/sendmail")
	if errors.Is(err, fs.ErrNotExist) {
		return sendmailState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	st := sendmailState{present: true}
	if fi.Mode()&os.ModeSymlink != 0 {
		st.target, _ = os.Readlink("/usr/sbin/sendmail")
		return st
	}
	st.data, _ = os.ReadFile("/usr/sbin/sendmail")
	return st
}

func TestDebianPackage(t *testing.T) {
	if os.Getenv("SMTPKIT_DEB_TEST") != "1" {
		t.Skip("installs a package on this machine: run with SMTPKIT_DEB_TEST=1 as root (scripts/test.sh does)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("SMTPKIT_DEB_TEST=1 needs root: dpkg -i, a system user")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "update-alternatives", "setpriv", "adduser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed", tool)
		}
	}
	// Leave the machine as it was: refuse to start over an installation.
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "smtpkit").Output(); strings.Contains(string(out), "installed") {
		t.Fatalf("the smtpkit package is installed on this machine (%s): the test would remove it", out)
	}
	for _, p := range []string{"/etc/smtpkit", "/var/lib/smtpkit"} {
		if exists(p) {
			t.Fatalf("%s exists: the test would change it", p)
		}
	}
	_, userErr := user.Lookup("smtpkit")
	userExisted := userErr == nil
	before := readSendmail(t)

	deb := buildPackage(t)
	t.Cleanup(func() { purge(t, userExisted, before) })
	out := run(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i:\n%s", out)

	checkInstalled(t, deb, before)
	// Installing again (an upgrade to the same version) runs prerm
	// upgrade and postinst configure again: nothing breaks.
	run(t, "dpkg", "-i", deb)
	checkInstalled(t, deb, before)
	smoke(t, before)
}

// buildPackage runs build.sh into a temporary directory.
func buildPackage(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("./build.sh", t.TempDir())
	cmd.Env = append(os.Environ(), "SMTPKIT_VERSION=1.0~test")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("build.sh: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if filepath.Base(deb) != "smtpkit_1.0~test_"+strings.TrimSpace(run(t, "dpkg", "--print-architecture"))+".deb" {
		t.Fatalf("build.sh made %q", deb)
	}
	return deb
}

// checkInstalled checks the files, the user, the directories and the
// sendmail alternative.
func checkInstalled(t *testing.T, deb string, before sendmailState) {
	t.Helper()
	if v := run(t, "/usr/bin/smtpkit", "version"); v != "smtpkit 1.0~test\n" {
		t.Errorf("smtpkit version = %q", v)
	}
	unit, err := os.ReadFile("/lib/systemd/system/smtpkit.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/smtpkit serve -config /etc/smtpkit/smtpkit.toml\n")) ||
		bytes.Contains(unit, []byte("/usr/local/bin")) {
		t.Errorf("installed unit:\n%s", unit)
	}
	if !exists("/usr/share/doc/smtpkit/examples/smtpkit.toml") {
		t.Error("no example config")
	}
	listing := run(t, "dpkg", "-L", "smtpkit")
	for _, f := range []string{"/usr/bin/smtpkit", "/lib/systemd/system/smtpkit.service", "/usr/share/doc/smtpkit/examples/smtpkit.toml"} {
		if !strings.Contains(listing, f+"\n") {
			t.Errorf("dpkg -L lacks %s", f)
		}
	}
	u, err := user.Lookup("smtpkit")
	if err != nil {
		t.Fatalf("no user smtpkit: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if uid >= 1000 || u.HomeDir != "/var/lib/smtpkit" {
		t.Errorf("user smtpkit: uid %d home %s, want a system user with home /var/lib/smtpkit", uid, u.HomeDir)
	}
	if pw := run(t, "getent", "passwd", "smtpkit"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("passwd entry %q: want no login shell", pw)
	}
	checkDir(t, "/etc/smtpkit", 0o750, "root", "smtpkit")
	checkDir(t, "/var/lib/smtpkit", 0o700, "smtpkit", "smtpkit")

	q := run(t, "update-alternatives", "--query", "sendmail")
	if !strings.Contains(q, "Alternative: /usr/bin/smtpkit\n") {
		t.Errorf("no sendmail alternative:\n%s", q)
	}
	if !before.present {
		if link, err := filepath.EvalSymlinks("/usr/sbin/sendmail"); err != nil || link != "/usr/bin/smtpkit" {
			t.Errorf("/usr/sbin/sendmail → %q, %v; want /usr/bin/smtpkit through the alternatives", link, err)
		}
		if link, err := filepath.EvalSymlinks("/usr/lib/sendmail"); err != nil || link != "/usr/bin/smtpkit" {
			t.Errorf("/usr/lib/sendmail → %q, %v", link, err)
		}
	} else if now := readSendmail(t); now.target != before.target || !bytes.Equal(now.data, before.data) {
		t.Errorf("the package replaced another MTA's /usr/sbin/sendmail")
	}
	// Registered either way: /etc/alternatives/sendmail is ours, and
	// becomes /usr/sbin/sendmail once no MTA owns that path.
	if link, err := filepath.EvalSymlinks("/etc/alternatives/sendmail"); err != nil || link != "/usr/bin/smtpkit" {
		t.Errorf("/etc/alternatives/sendmail → %q, %v", link, err)
	}
}

func checkDir(t *testing.T, path string, mode os.FileMode, owner, group string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	if fi.Mode().Perm() != mode || u == nil || u.Username != owner || g == nil || g.Name != group {
		t.Errorf("%s: %v %v:%v, want %v %s:%s", path, fi.Mode().Perm(), u, g, mode, owner, group)
	}
}

// smoke writes /etc/smtpkit with the installed quickstart (certificate
// files, listeners moved to the test's loopback address), runs the unit's
// ExecStart as its User and Group with its capability, waits for READY=1
// on a NOTIFY_SOCKET, delivers a message through the sendmail alternative
// (as root, the way cron does), finds it in the Maildir
// owned by smtpkit, and stops the server with SIGTERM.
func smoke(t *testing.T, before sendmailState) {
	t.Helper()
	tlsDir := "/etc/smtpkit/tls"
	if err := os.Mkdir(tlsDir, 0o750); err != nil {
		t.Fatal(err)
	}
	cert := testcert.New(t, "mail.deb.test")
	certFile, keyFile := testcert.WriteFiles(t, cert, tlsDir)
	run(t, "chgrp", "-R", "smtpkit", tlsDir)
	run(t, "chmod", "0640", certFile, keyFile)
	out := run(t, "/usr/bin/smtpkit", "quickstart", "-hostname", "mail.deb.test", "-cert", certFile, "-key", keyFile, "deb.test")
	if !strings.Contains(out, "deb.test. MX 10 mail.deb.test.") {
		t.Fatalf("quickstart:\n%s", out)
	}
	cfgPath := "/etc/smtpkit/smtpkit.toml"
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{":25": "10025", ":587": "10587", ":465": "10465", ":2525": "12525"}
	for from, port := range ports {
		cfg = bytes.Replace(cfg, []byte(`address = "`+from+`"`), []byte(`address = "`+smokeIP+":"+port+`"`), 1)
	}
	// Verification of the arriving message (SPF, iprev, DMARC) asks DNS:
	// a server of the test's own, never the machine's resolver.
	ns := dnstest.Start(t, dnstest.Zone{Host: "127.17.5.11"})
	cfg = append(cfg, []byte("\n[outbound]\nresolver = \""+ns.Addr+"\"\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, "/usr/bin/smtpkit", "config", "check", "-certs", cfgPath)

	// The unit's command line, as its user, with its capability.
	var execStart, unitUser string
	unit, _ := os.ReadFile("/lib/systemd/system/smtpkit.service")
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			execStart = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "User="); ok {
			unitUser = v
		}
	}
	notifyDir, err := os.MkdirTemp("", "smtpkit-notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(notifyDir) })
	os.Chmod(notifyDir, 0o755)
	sock := filepath.Join(notifyDir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	os.Chmod(sock, 0o777)
	argv := append([]string{"--reuid=" + unitUser, "--regid=" + unitUser, "--init-groups",
		"--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--"}, strings.Fields(execStart)...)
	srv := exec.Command("setpriv", argv...)
	srv.Env = []string{"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=" + sock}
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	}()
	waitReady(t, nc, exited)

	// sendmail as cron calls it: /usr/sbin/sendmail when the alternative
	// is ours, else (another MTA owns that path, as Postfix here may) the
	// alternative's own link — a program named sendmail either way.
	sendmail := "/usr/sbin/sendmail"
	if before.present {
		sendmail = "/etc/alternatives/sendmail"
	}
	cmd := exec.Command(sendmail, "-i", "postmaster@deb.test")
	cmd.Stdin = strings.NewReader("Subject: smoke\n\nfrom the package test\n")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", sendmail, err, out)
	}
	box := "/var/lib/smtpkit/mail/deb.test/postmaster/new"
	deadline := time.Now().Add(10 * time.Second)
	var files []os.DirEntry
	for time.Now().Before(deadline) { // delivered before the 250; bounded poll for the listing
		if files, _ = os.ReadDir(box); len(files) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(files) != 1 {
		t.Fatalf("%s: %d messages, want 1", box, len(files))
	}
	fi, _ := files[0].Info()
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || strconv.Itoa(int(st.Uid)) != lookupUID(t, "smtpkit") {
		t.Errorf("message file %v uid %d: want 0600 owned by smtpkit", fi.Mode().Perm(), st.Uid)
	}
	if body, _ := os.ReadFile(filepath.Join(box, files[0].Name())); !bytes.Contains(body, []byte("from the package test")) {
		t.Errorf("message:\n%s", body)
	}

	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Error("serve did not stop within 40s of SIGTERM")
	}
}

func lookupUID(t *testing.T, name string) string {
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u.Uid
}

// waitReady reads the notify socket until READY=1, or fails when serve
// exits or 30 s pass.
func waitReady(t *testing.T, nc *net.UnixConn, exited chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited before READY=1: %v", err)
		default:
		}
		nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := nc.Read(buf)
		if err == nil && strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			return
		}
	}
	t.Fatal("no READY=1 within 30s")
}

// purge removes the package and what the test made, and checks that the
// machine is as it was.
func purge(t *testing.T, userExisted bool, before sendmailState) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "dpkg", "--purge", "smtpkit").CombinedOutput(); err != nil {
		t.Errorf("dpkg --purge: %v\n%s", err, out)
	} else {
		t.Logf("dpkg --purge:\n%s", out)
	}
	if exists("/usr/bin/smtpkit") || exists("/lib/systemd/system/smtpkit.service") {
		t.Error("files left after purge")
	}
	if out, err := exec.Command("update-alternatives", "--query", "sendmail").CombinedOutput(); err == nil && strings.Contains(string(out), "/usr/bin/smtpkit") {
		t.Errorf("the sendmail alternative is left:\n%s", out)
	}
	if now := readSendmail(t); now.present != before.present || now.target != before.target || !bytes.Equal(now.data, before.data) {
		t.Errorf("/usr/sbin/sendmail after purge: %+v, before: %+v", now, before)
	}
	// Purge keeps the data (mail) and what is not quickstart's in
	// /etc/smtpkit (the test's certificate): the test removes them.
	if !exists("/var/lib/smtpkit") {
		t.Error("purge removed /var/lib/smtpkit: mail must be kept")
	}
	if exists("/etc/smtpkit/smtpkit.toml") {
		t.Error("purge left /etc/smtpkit/smtpkit.toml")
	}
	os.RemoveAll("/etc/smtpkit")
	os.RemoveAll("/var/lib/smtpkit")
	if !userExisted {
		if out, err := exec.Command("deluser", "--system", "--quiet", "smtpkit").CombinedOutput(); err != nil {
			t.Errorf("deluser: %v\n%s", err, out)
		}
		exec.Command("delgroup", "--system", "--quiet", "smtpkit").Run()
	}
}
