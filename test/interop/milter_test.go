package interop

import (
	"bytes"
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

// The milter tests keep to 127.15.5.0/24: smtpkit listens on milterHost,
// rspamd's proxy worker on rspamdHost; rspamd's resolver is a loopback
// address where nothing listens, so no lookup leaves the machine.
const (
	milterHost     = "127.15.5.1"
	rspamdHost     = "127.15.5.2"
	rspamdDNS      = "127.15.5.53:53"
	milterClientIP = "127.15.5.10"
	rspamdStart    = 120 * time.Second // rspamd compiles its rules at start
	// gtube is SpamAssassin's Generic Test for Unsolicited Bulk Email,
	// which rspamd rejects on sight.
	gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
)

// rspamd is a running rspamd (Debian's) with only its proxy worker, in
// milter mode, scanning by itself (self_scan).
type rspamd struct {
	addr string // the milter's host:port
	dir  string
	cmd  *exec.Cmd
	out  *syncBuffer
}

// rspamdConf is a minimal offline configuration: Debian's rules and
// plugins, but no module that needs configuring (no redis, no RBL, SPF,
// DKIM, DMARC, fuzzy or neural: those stay off without a section), no C
// filters, DNS pointed at a dead loopback port, one proxy worker in
// milter mode that scans itself (no normal or controller worker),
// milter_headers adding its X-Spamd-Result, X-Rspamd-Queue-Id and
// X-Rspamd-Server fields, for local and authenticated clients too.
const rspamdConf = `lua = "$RULESDIR/rspamd.lua";
modules { path = "${PLUGINSDIR}"; }
options {
  pidfile = "%[1]s/rspamd.pid";
  filters = "";
  dns { nameserver = ["%[3]s"]; timeout = 1s; retransmits = 1; }
  local_addrs = [];
  hs_cache_dir = "%[1]s/";
  cache_file = "%[1]s/symbols.cache";
  tempdir = "%[1]s";
  explicit_modules = [];
}
logging { type = "file"; filename = "%[1]s/rspamd.log"; level = "info"; }
actions { reject = 15; add_header = 6; greylist = 4; }
worker "rspamd_proxy" {
  bind_socket = "%[2]s";
  milter = yes;
  timeout = 30s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
milter_headers {
  use = ["x-spamd-result", "x-rspamd-server", "x-rspamd-queue-id"];
  skip_local = false;
  skip_authenticated = false;
}
`

// startRspamd runs rspamd in the foreground (-f) as root (-i: the test
// directory is ours) until the test ends, and waits until its milter
// port accepts connections.
func startRspamd(t *testing.T) *rspamd {
	t.Helper()
	bin := Need(t, "rspamd")
	dir := t.TempDir()
	r := &rspamd{addr: freeAddrOn(t, rspamdHost), dir: dir, out: &syncBuffer{}}
	conf := filepath.Join(dir, "rspamd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, rspamdConf, dir, r.addr, rspamdDNS), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "-f", "-i", "-c", conf)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers too are stopped
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "rspamd.log"))
			t.Logf("rspamd output:\n%s\nrspamd.log (tail):\n%s", r.out.String(), tail(log, 4000))
		}
	})
	waitUntil(t, rspamdStart, "rspamd's milter port", func() bool {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

// stop ends rspamd and its workers (SIGTERM to the process group, SIGKILL
// after stopTimeout), once.
func (r *rspamd) stop(t *testing.T) {
	if r.cmd == nil {
		return
	}
	pgid := r.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	r.cmd = nil
	// Its workers may outlive the main process for a moment: the port is
	// closed when nothing answers any more.
	waitUntil(t, stopTimeout, "rspamd's port closed", func() bool {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestMilterRspamd: smtpkit with a real rspamd as its [[milter]]; rspamd
// is told the client's address and, on submission, the authenticated
// user. The GTUBE message is refused at the end of DATA with rspamd's own reply
// (554 5.7.1 Gtube pattern) and not stored; a clean message is stored
// with rspamd's header fields, from an anonymous mx client and from an
// authenticated submission client alike; once rspamd is stopped, the
// server with default_action = "tempfail" answers 451 4.7.1 and the one
// with "accept" delivers without it; /metrics counts the answers.
func TestMilterRspamd(t *testing.T) {
	swaks := Need(t, "swaks")
	rs := startRspamd(t)
	start := func(action string) (*Server, string) {
		metricsAddr := freeAddrOn(t, milterHost)
		s := StartServer(t, ServerOptions{
			IP: milterHost,
			ExtraTOML: fmt.Sprintf("[metrics]\naddress = %q\n\n[[milter]]\nname = \"rspamd\"\naddress = \"inet:%s\"\ntimeout = \"20s\"\ndefault_action = %q\n",
				metricsAddr, rs.addr, action),
		})
		return s, metricsAddr
	}
	tempfail, tempfailMetrics := start("tempfail")
	accept, acceptMetrics := start("accept")
	const pw = "correct horse battery staple"
	const rcpt = "user@test.example"
	for _, s := range []*Server{tempfail, accept} {
		s.AddUser(t, rcpt, pw)
	}
	send := func(s *Server, addr, tag, body string, auth bool) peerRun {
		t.Helper()
		msg := testMessage(tag)
		if body != "" {
			msg = bytes.Replace(msg, []byte("Hello from "+tag+"."), []byte(body), 1)
		}
		from := "a@b.example"
		args := swaksArgs(s, addr, from, rcpt)
		if auth {
			args = swaksArgs(s, addr, rcpt, rcpt)
			args = append(args, "--auth", "PLAIN", "--auth-user", rcpt, "--auth-password", pw)
		}
		args = append(args, "--local-interface", milterClientIP, "--data", swaksData(t, msg))
		return runPeer(t, nil, swaks, args...)
	}
	rspamdFields := []string{"X-Spamd-Result: default: False [", "X-Rspamd-Queue-Id: ", "X-Rspamd-Server: "}

	// A clean message, anonymous on mx, then authenticated on submission.
	for i, c := range []struct {
		addr string
		auth bool
	}{{tempfail.MX, false}, {tempfail.Submission, true}} {
		r := send(tempfail, c.addr, fmt.Sprintf("clean-%d", i), "", c.auth)
		if r.Err != nil {
			t.Fatalf("clean message %d: %v\n%s", i, r.Err, r.Stdout)
		}
		msgs := tempfail.WaitMessages(t, rcpt, i+1)
		got := string(msgs[i])
		for _, f := range rspamdFields {
			if !strings.Contains(got, "\r\n"+f) {
				t.Errorf("clean message %d has no %q field:\n%s", i, f, got)
			}
		}
		if !strings.Contains(got, "Subject: interop clean-") || !strings.HasSuffix(got, "\r\nlast line\r\n") {
			t.Errorf("clean message %d damaged:\n%s", i, got)
		}
		if strings.Contains(strings.ReplaceAll(got, "\r\n", ""), "\n") {
			t.Errorf("clean message %d has bare LF:\n%q", i, got)
		}
	}

	// rspamd knew the submission client as the authenticated user (the
	// {auth_authen} macro) and the mx client as anonymous.
	rlog, _ := os.ReadFile(filepath.Join(rs.dir, "rspamd.log"))
	if !strings.Contains(string(rlog), "ip: "+milterClientIP+", user: "+rcpt+", from: <"+rcpt+">") ||
		!strings.Contains(string(rlog), "ip: "+milterClientIP+", from: <a@b.example>") {
		t.Errorf("rspamd did not see the client address and the authenticated user:\n%s", tail(rlog, 3000))
	}

	// GTUBE: refused with rspamd's reason, nothing stored.
	r := send(tempfail, tempfail.MX, "gtube", gtube, false)
	if r.Err == nil || !strings.Contains(r.Stdout, "* 554 5.7.1 Gtube pattern") {
		t.Fatalf("GTUBE: want 554 5.7.1 Gtube pattern at the end of DATA:\n%s", r.Stdout)
	}
	if n := len(tempfail.WaitMessages(t, rcpt, 2)); n != 2 {
		t.Errorf("%d messages stored, want the 2 clean ones", n)
	}

	// rspamd stopped: the configured default action.
	rs.stop(t)
	r = send(tempfail, tempfail.MX, "down-tempfail", "", false)
	if r.Err == nil || !strings.Contains(r.Stdout, "* 451 4.7.1 ") {
		t.Fatalf("rspamd down, tempfail: want 451 4.7.1:\n%s", r.Stdout)
	}
	r = send(accept, accept.MX, "down-accept", "", false)
	if r.Err != nil {
		t.Fatalf("rspamd down, accept: %v\n%s", r.Err, r.Stdout)
	}
	got := string(accept.WaitMessages(t, rcpt, 1)[0])
	if strings.Contains(got, "X-Spamd-Result:") || !strings.Contains(got, "Subject: interop down-accept") {
		t.Errorf("delivered without rspamd: want the message without its fields:\n%s", got)
	}
	if !strings.Contains(tempfail.Logs(), "milter unavailable") {
		t.Error("the failing milter is not logged")
	}

	want := map[string]map[string]float64{
		tempfailMetrics: {
			`smtpkit_milter_actions_total{action="accept",milter="rspamd"}`: 2,
			`smtpkit_milter_actions_total{action="reject",milter="rspamd"}`: 1,
			`smtpkit_milter_actions_total{action="failed",milter="rspamd"}`: 1,
		},
		acceptMetrics: {`smtpkit_milter_actions_total{action="failed",milter="rspamd"}`: 1},
	}
	for addr, w := range want {
		var m map[string]float64
		waitUntil(t, pollTimeout, "the milter counters", func() bool {
			m = scrapeHTTP(t, addr)
			for k, v := range w {
				if m[k] != v {
					return false
				}
			}
			return true
		})
	}
}
