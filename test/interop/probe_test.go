package interop

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
)

// Tests of `smtpkit probe` against our own server in each role, against
// aiosmtpd with and without TLS, against Postfix's smtp-sink and a real
// Postfix smtpd, and against a port where nothing listens.

// probeReport mirrors the JSON of `smtpkit probe --json` (docs/probe.md).
type probeReport struct {
	Results []probeResult `json:"results"`
}

type probeResult struct {
	Address         string    `json:"address"`
	Host            string    `json:"host"`
	Domain          string    `json:"domain"`
	Route           string    `json:"route"`
	Pref            int       `json:"pref"`
	IP              string    `json:"ip"`
	Plan            string    `json:"plan"`
	Mode            string    `json:"mode"`
	Connected       bool      `json:"connected"`
	Banner          string    `json:"banner"`
	EHLOBeforeTLS   []string  `json:"ehlo_before_tls"`
	AuthBeforeTLS   []string  `json:"auth_before_tls"`
	StartTLSOffered bool      `json:"starttls_offered"`
	TLS             *probeTLS `json:"tls"`
	EHLOAfterTLS    []string  `json:"ehlo_after_tls"`
	AuthAfterTLS    []string  `json:"auth_after_tls"`
	Warnings        []string  `json:"warnings"`
	Error           string    `json:"error"`
	Transcript      []string  `json:"transcript"`
}

type probeTLS struct {
	Version       string `json:"version"`
	VerifyName    string `json:"verify_name"`
	ChainVerified bool   `json:"chain_verified"`
	NameMatches   bool   `json:"name_matches"`
	Valid         bool   `json:"valid"`
	Certificate   struct {
		Subject  string   `json:"subject"`
		SANs     []string `json:"sans"`
		DaysLeft int      `json:"days_left"`
	} `json:"certificate"`
}

// runProbeCmd runs `smtpkit probe args...` and returns its exit status and
// stdout (and stderr, for failure messages).
func runProbeCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatalf("building smtpkit: %v", err)
	}
	r := runPeer(t, nil, bin, append([]string{"probe", "--timeout", "10s"}, args...)...)
	code := 0
	var ee *exec.ExitError
	if errors.As(r.Err, &ee) {
		code = ee.ExitCode()
	} else if r.Err != nil {
		t.Fatalf("smtpkit probe: %v", r.Err)
	}
	return code, r.Stdout, r.Stderr
}

// probeJSON runs the probe with --json and decodes the report.
func probeJSON(t *testing.T, wantCode int, args ...string) probeReport {
	t.Helper()
	code, out, errOut := runProbeCmd(t, append([]string{"--json", "-v"}, args...)...)
	var rep probeReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("probe %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	if code != wantCode {
		t.Fatalf("probe %v: exit %d, want %d\n%s", args, code, wantCode, out)
	}
	return rep
}

func probeWarned(r probeResult, substr string) bool {
	return slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, substr) })
}

// TestProbeSmtpkit probes our own server: the mx listener (opportunistic
// STARTTLS), submission (STARTTLS required before AUTH) and submissions
// (implicit TLS), then checks the certificate requirements.
func TestProbeSmtpkit(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	rep := probeJSON(t, 0, s.MX, s.Submission)
	mx, sub := rep.Results[0], rep.Results[1]
	for _, r := range []probeResult{mx, sub} {
		if r.Mode != "starttls" || !r.StartTLSOffered || r.TLS == nil || r.Error != "" {
			t.Fatalf("%s: %+v", r.Address, r)
		}
		if !strings.HasPrefix(r.Banner, "220 ") || !strings.Contains(r.Banner, testHostname) {
			t.Errorf("%s: banner %q", r.Address, r.Banner)
		}
		if r.TLS.Version != "TLS 1.3" && r.TLS.Version != "TLS 1.2" {
			t.Errorf("%s: TLS version %q", r.Address, r.TLS.Version)
		}
		if !slices.Contains(r.TLS.Certificate.SANs, "DNS:"+testHostname) || r.TLS.ChainVerified || !r.TLS.NameMatches {
			t.Errorf("%s: certificate %+v", r.Address, r.TLS)
		}
		if slices.Contains(r.EHLOAfterTLS, "STARTTLS") || probeWarned(r, "offered before TLS") {
			t.Errorf("%s: %v / %v", r.Address, r.EHLOAfterTLS, r.Warnings)
		}
		if !slices.Contains(r.Transcript, "C: STARTTLS") {
			t.Errorf("%s: transcript %q", r.Address, r.Transcript)
		}
	}
	if len(sub.AuthBeforeTLS) != 0 || len(sub.AuthAfterTLS) == 0 {
		t.Errorf("submission AUTH before TLS %v, after %v", sub.AuthBeforeTLS, sub.AuthAfterTLS)
	}

	rep = probeJSON(t, 0, "--implicit-tls", s.Submissions)
	if r := rep.Results[0]; r.Mode != "implicit" || r.TLS == nil || r.EHLOBeforeTLS != nil || len(r.AuthAfterTLS) == 0 {
		t.Errorf("submissions: %+v", r)
	}

	// The self-signed certificate does not chain to the system roots...
	if code, out, _ := runProbeCmd(t, "--require-valid-cert", s.MX); code != 4 || !strings.Contains(out, "NOT MET") {
		t.Errorf("--require-valid-cert with the self-signed certificate: exit %d\n%s", code, out)
	}
	// ...but it does to itself, for the server's name.
	rep = probeJSON(t, 0, "--require-valid-cert", "--require-tls", "--ca", s.CertPath, "--servername", testHostname, s.MX, s.Submission)
	for _, r := range rep.Results {
		if !r.TLS.Valid || r.TLS.VerifyName != testHostname {
			t.Errorf("%s: %+v", r.Address, r.TLS)
		}
	}
	probeJSON(t, 0, "--require-valid-cert", "--implicit-tls", "--ca", s.CertPath, "--servername", testHostname, s.Submissions)
	if code, _, _ := runProbeCmd(t, "--require-valid-cert", "--ca", s.CertPath, "--servername", "other.example", s.MX); code != 4 {
		t.Errorf("wrong --servername: exit %d, want 4", code)
	}
	// --no-tls cannot meet --require-tls: a usage error.
	if code, _, errOut := runProbeCmd(t, "--no-tls", "--require-tls", s.MX); code != 2 {
		t.Errorf("--no-tls --require-tls: exit %d, want 2 (usage)\n%s", code, errOut)
	}
}

// TestProbeDomain: `smtpkit probe DOMAIN` follows the routes the queue
// would, from a configuration of its own: a static route with tls =
// "verify" to our server's submission listener, and a domain whose two MX
// records (served by a loopback DNS server named as outbound.resolver, no
// real DNS) point at our mx listener's port on 127.0.0.1 and on 127.0.0.2,
// where nothing listens. Each address gets the plan delivery would use.
func TestProbeDomain(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	_, mxPort, _ := net.SplitHostPort(s.MX)
	resolver := dnstest.NewServer(t,
		"mx.example. MX 10 mx1.mx.example.",
		"mx.example. MX 20 mx2.mx.example.",
		"mx1.mx.example. A 127.0.0.1",
		"mx2.mx.example. A 127.0.0.2",
	)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "probe.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`hostname = "probe.test.example"
data_dir = %q
[[domain]]
name = "probe.test.example"
[tls]
self_signed = true
[outbound]
tls = "opportunistic"
resolver = %q
port = %s
allow_loopback = true
ca_file = %q
[[route]]
domain = "routed.example"
host = %q
tls = "verify"
`, dir, resolver, mxPort, s.CertPath, s.Submission)), 0o600)

	rep := probeJSON(t, 1, "-config", cfg, "routed.example", "mx.example")
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(rep.Results), rep.Results)
	}
	routed, mx1, mx2 := rep.Results[0], rep.Results[1], rep.Results[2]
	// outbound.ca_file is the probe's --ca for a domain: the route's verify
	// plan is met by the server's certificate (valid for 127.0.0.1).
	if routed.Domain != "routed.example" || routed.Route != "routed.example" || routed.Address != s.Submission ||
		routed.Plan != "STARTTLS when offered, TLS required, certificate must be valid for 127.0.0.1 (policy verify from route routed.example)" ||
		routed.TLS == nil || !routed.TLS.Valid || routed.Error != "" || probeWarned(routed, "delivery would defer") {
		t.Errorf("static route: %+v", routed)
	}
	if mx1.Domain != "mx.example" || mx1.Host != "mx1.mx.example" || mx1.Pref != 10 || mx1.Address != s.MX ||
		mx1.Plan != "STARTTLS when offered, any certificate accepted (policy opportunistic from outbound default)" ||
		mx1.TLS == nil || mx1.TLS.VerifyName != "mx1.mx.example" || mx1.Error != "" {
		t.Errorf("first MX: %+v", mx1)
	}
	if !slices.Contains(mx1.Transcript, "C: EHLO probe.test.example") {
		t.Errorf("EHLO is not the configured hostname: %q", mx1.Transcript)
	}
	if mx2.Host != "mx2.mx.example" || mx2.Pref != 20 || mx2.IP != "127.0.0.2" || mx2.Connected || !strings.Contains(mx2.Error, "connection refused") {
		t.Errorf("second MX: %+v", mx2)
	}
}

// TestProbeTextOutput checks the readable table and the -v transcript.
func TestProbeTextOutput(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	code, out, _ := runProbeCmd(t, "-v", s.Submission)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{s.Submission + "  OK", "STARTTLS         offered", "EHLO after TLS", "C: EHLO ", "S: 220 ", "C: QUIT", "1 port(s) probed: 1 ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colors in output to a pipe:\n%q", out)
	}
}

func TestProbeNothingListening(t *testing.T) {
	code, out, _ := runProbeCmd(t, freeAddr(t))
	if code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// TestProbeAiosmtpd: an independent server with STARTTLS, without TLS and
// with implicit TLS.
func TestProbeAiosmtpd(t *testing.T) {
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		missing(t, "python3-aiosmtpd", err)
	}
	cert, key := probeCert(t, "aiosmtpd.test.example")

	r := probeJSON(t, 0, startAiosmtpdProbe(t, python, "starttls", cert, key)).Results[0]
	if !r.StartTLSOffered || r.TLS == nil || len(r.AuthBeforeTLS) != 0 || !slices.Equal(r.AuthAfterTLS, []string{"LOGIN", "PLAIN"}) {
		t.Errorf("starttls: %+v", r)
	}
	if r.TLS != nil && r.TLS.Certificate.Subject != "CN=aiosmtpd.test.example" {
		t.Errorf("subject %q", r.TLS.Certificate.Subject)
	}

	addr := startAiosmtpdProbe(t, python, "plain", cert, key)
	r = probeJSON(t, 0, addr).Results[0]
	if r.StartTLSOffered || r.TLS != nil || len(r.AuthBeforeTLS) == 0 || !probeWarned(r, "offered before TLS") || !probeWarned(r, "STARTTLS not offered") {
		t.Errorf("plain: %+v", r)
	}
	probeJSON(t, 3, "--require-tls", addr)

	addr = startAiosmtpdProbe(t, python, "implicit", cert, key)
	r = probeJSON(t, 0, "--implicit-tls", "--ca", cert, "--servername", "aiosmtpd.test.example", "--require-valid-cert", addr).Results[0]
	if r.Mode != "implicit" || r.TLS == nil || !r.TLS.Valid || len(r.AuthAfterTLS) == 0 {
		t.Errorf("implicit: %+v", r)
	}
	// Speaking plaintext to an implicit-TLS port fails (the server waits
	// for a ClientHello, the probe for a greeting), and says so.
	if r := probeJSON(t, 1, "--starttls", "--timeout", "2s", addr).Results[0]; !strings.Contains(r.Error, "timeout") {
		t.Errorf("STARTTLS on an implicit-TLS port: %+v", r)
	}
	// Without a mode flag the probe finds out (issue #19): no plaintext
	// greeting within 3s, so it tries implicit TLS and says so; `smtpkit
	// send` gives up after its greeting timeout and names --tls implicit.
	r = probeJSON(t, 0, "--ca", cert, "--servername", "aiosmtpd.test.example", addr).Results[0]
	if r.Mode != "implicit" || r.TLS == nil || !r.TLS.Valid || !probeWarned(r, "this port speaks implicit TLS") {
		t.Errorf("implicit TLS guessed: %+v", r)
	}
	res := mustSmtpkit(t, 3, nil, nil, "send", "--server", addr, "--greeting-timeout", "1s", "--ca", cert,
		"--servername", "aiosmtpd.test.example", "--from", "a@b.example", "--to", "c@d.example", "--body", "x")
	if !strings.Contains(res.Stderr, "no greeting from "+addr+" within 1s") || !strings.Contains(res.Stderr, "use --tls implicit") {
		t.Errorf("send to the implicit-TLS port without --tls: %s", res.Stderr)
	}
}

// startAiosmtpdProbe runs testdata/probe_aiosmtpd.py in mode and returns
// its address.
func startAiosmtpdProbe(t *testing.T, python, mode, cert, key string) string {
	t.Helper()
	cmd := exec.Command(python, filepath.Join("testdata", "probe_aiosmtpd.py"), mode, cert, key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatalf("aiosmtpd (%s) exited: %s", mode, stderr.String())
		}
		return net.JoinHostPort("127.0.0.1", p)
	case <-time.After(readyTimeout):
		t.Fatalf("aiosmtpd (%s) not ready: %s", mode, stderr.String())
	}
	return ""
}

// TestProbeSmtpSink: Postfix's smtp-sink has no TLS and offers AUTH in
// plaintext; the probe warns about both and --require-tls fails.
func TestProbeSmtpSink(t *testing.T) {
	bin := Need(t, "smtp-sink")
	addr := freeAddr(t)
	args := []string{addr, "10"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...) // smtp-sink refuses to run as root
	}
	cmd := exec.Command(bin, args...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	probeWaitListening(t, addr, &logs)

	r := probeJSON(t, 0, addr).Results[0]
	if r.Error != "" || r.TLS != nil || !strings.HasPrefix(r.Banner, "220 ") || !slices.Contains(r.EHLOBeforeTLS, "PIPELINING") {
		t.Errorf("%+v", r)
	}
	// smtp-sink has no TLS, but it offers AUTH: both draw a warning.
	if r.StartTLSOffered || !probeWarned(r, "STARTTLS not offered") || !probeWarned(r, "AUTH (PLAIN LOGIN) offered before TLS") {
		t.Errorf("%+v", r)
	}
	probeJSON(t, 3, "--require-tls", addr)
}

// TestProbePostfix runs a private Postfix instance (its own
// config_directory and queue, smtpd on a free loopback port) with and
// without a TLS certificate.
func TestProbePostfix(t *testing.T) {
	cert, key := probeCert(t, "postfix.test.example")

	addr := startProbePostfix(t, cert, key)
	r := probeJSON(t, 0, "--ca", cert, "--servername", "postfix.test.example", "--require-valid-cert", addr).Results[0]
	if !strings.Contains(r.Banner, "ESMTP Postfix") || !r.StartTLSOffered || r.TLS == nil || !r.TLS.Valid {
		t.Fatalf("%+v", r)
	}
	if slices.Contains(r.EHLOAfterTLS, "STARTTLS") || !slices.Contains(r.EHLOAfterTLS, "ENHANCEDSTATUSCODES") {
		t.Errorf("EHLO after TLS %v", r.EHLOAfterTLS)
	}
	// Without --ca: the name matches, the chain does not verify.
	if code, out, _ := runProbeCmd(t, "--servername", "postfix.test.example", "--require-valid-cert", addr); code != 4 {
		t.Errorf("exit %d, want 4\n%s", code, out)
	}

	plain := startProbePostfix(t, "", "")
	r = probeJSON(t, 0, plain).Results[0]
	if r.StartTLSOffered || r.TLS != nil || !probeWarned(r, "STARTTLS not offered") {
		t.Errorf("%+v", r)
	}
	probeJSON(t, 3, "--require-tls", plain)
}

// startProbePostfix starts `postfix -c DIR start-fg` with smtpd on a free
// loopback port; with cert and key it offers STARTTLS. It needs root:
// master starts smtpd as mail_owner (postfix).
func startProbePostfix(t *testing.T, cert, key string) string {
	t.Helper()
	return startPostfixWith(t, cert, key, "")
}

// startPostfixWith is startProbePostfix with a mail-accepting setup when
// acceptMain is not empty: those main.cf lines are added, and cleanup and
// trivial-rewrite run so that DATA is stored in the private queue (no
// qmgr: nothing leaves it).
func startPostfixWith(t *testing.T, cert, key, acceptMain string) string {
	t.Helper()
	postfix := Need(t, "postfix")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	dir, err := os.MkdirTemp("", "smtpkit-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf, queue, data := filepath.Join(dir, "conf"), filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{conf, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755) // the postfix user walks into queue/
	if err := probeChown(data, "postfix"); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	writePostfixConfig(conf, queue, data, addr, cert, key)
	if acceptMain != "" {
		appendFile(t, filepath.Join(conf, "main.cf"), acceptMain)
		appendFile(t, filepath.Join(conf, "master.cf"), `cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
`)
	}

	var logs syncBuffer
	cmd := exec.Command(postfix, "-c", conf, "start-fg")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop := exec.Command(postfix, "-c", conf, "stop")
		stop.Stdout, stop.Stderr = &logs, &logs
		stop.Run()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("postfix logs:\n%s", logs.String())
		}
	})
	probeWaitListening(t, addr, &logs)
	return addr
}

// writePostfixConfig writes main.cf and master.cf for a private instance:
// smtpd on addr, and only the services smtpd needs to greet, say EHLO and
// do STARTTLS (anvil, proxymap, tlsmgr, postlogd for logging to stdout).
func writePostfixConfig(conf, queue, data, addr, cert, key string) {
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.test.example
mydestination =
alias_maps =
alias_database =
maillog_file = /dev/stdout
`, queue, data)
	if cert != "" {
		mainCF += fmt.Sprintf("smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\nsmtpd_tls_security_level = may\n", cert, key)
	}
	masterCF := addr + ` inet n - n - - smtpd
anvil     unix  -       -       n       -       1       anvil
proxymap  unix  -       -       n       -       -       proxymap
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
`
	os.WriteFile(filepath.Join(conf, "main.cf"), []byte(mainCF), 0o644)
	os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644)
}

// probeChown gives path to the named system user.
func probeChown(path, user string) error {
	out, err := exec.Command("id", "-u", user).Output()
	if err != nil {
		return fmt.Errorf("id -u %s: %v", user, err)
	}
	var uid int
	if _, err := fmt.Sscan(string(out), &uid); err != nil {
		return err
	}
	return os.Chown(path, uid, -1)
}

// probeWaitListening polls until addr accepts connections, bounded.
func probeWaitListening(t *testing.T, addr string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after %v: %v\n%s", addr, readyTimeout, err, logs.String())
		}
		time.Sleep(pollStep) // polling a port, bounded above
	}
}

// probeCert writes a self-signed certificate for name and 127.0.0.1, valid
// for 30 days (so the probe does not warn about expiry), and its key as PEM
// files in a directory other users may enter (Postfix reads them), and
// returns their paths.
func probeCert(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	return testcert.WriteFiles(t, testcert.NewFor(t, 30*24*time.Hour, name, "127.0.0.1"), dir)
}

// TestProbeSmugglingSmtpkit runs `smtpkit probe --smuggling` against the
// real daemon's mx listener, over STARTTLS and in plaintext: every ending
// is refused, the STARTTLS injection is discarded, exit 0, and no test
// message reached a mailbox.
func TestProbeSmugglingSmtpkit(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	before := countMaildirFiles(t, s.DataDir)
	for _, args := range [][]string{{s.MX}, {"--no-tls", s.MX}} {
		code, out, errOut := runProbeCmd(t, append([]string{"--smuggling", "--rcpt", "postmaster@test.example", "--json", "-v"}, args...)...)
		var rep struct {
			Smuggling []struct {
				Mode       string `json:"mode"`
				Vulnerable bool   `json:"vulnerable"`
				Endings    []struct {
					Ending, Outcome, Reply string
				} `json:"endings"`
				Injection *struct{ Outcome, Detail string } `json:"starttls_injection"`
			} `json:"smuggling"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Smuggling) != 1 {
			t.Fatalf("%v: exit %d, %v\n%s%s", args, code, err, out, errOut)
		}
		r := rep.Smuggling[0]
		if r.Vulnerable || len(r.Endings) != 9 {
			t.Errorf("%v: %+v", args, r)
		}
		for _, e := range r.Endings {
			if e.Outcome != "rejected" {
				t.Errorf("%v: ending %s: %s %s", args, e.Ending, e.Outcome, e.Reply)
			}
		}
		if tls := args[0] != "--no-tls"; tls != (r.Injection != nil) || tls && r.Injection.Outcome != "safe" || r.Mode != map[bool]string{true: "starttls", false: "none"}[tls] {
			t.Errorf("%v: mode %s, injection %+v", args, r.Mode, r.Injection)
		}
	}
	if after := countMaildirFiles(t, s.DataDir); after != before {
		t.Errorf("%d files in maildirs before, %d after: a test message was accepted", before, after)
	}
	if !strings.Contains(s.Logs(), "discarding plaintext pipelined after STARTTLS") {
		t.Errorf("the daemon did not log the discarded injection:\n%s", s.Logs())
	}
}

// countMaildirFiles counts the files in every Maildir new/ and cur/
// directory under dir.
func countMaildirFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if p := filepath.Base(filepath.Dir(path)); p == "new" || p == "cur" {
				n++
			}
		}
		return nil
	})
	return n
}

// TestProbeDomainDANE: `smtpkit probe DOMAIN` with the daemon's mx
// listener as the MX of a DNSSEC-signed domain (a loopback DNS server
// setting the AD bit, as outbound.resolver): a DANE-EE record of the
// daemon's certificate gives a deliverable, authenticated hop and exit 0;
// a record of another certificate, exit 5 (enforced TLS would fail).
func TestProbeDomainDANE(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	_, mxPort, _ := net.SplitHostPort(s.MX)
	pemBytes, err := os.ReadFile(s.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("%s: no PEM", s.CertPath)
	}
	daemonCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	other, err := x509.ParseCertificate(testcert.New(t, "other.example").Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		exit int
	}{{"matching record", daemonCert, 0}, {"other certificate's record", other, 5}} {
		t.Run(tt.name, func(t *testing.T) {
			zone := dnstest.Start(t, dnstest.Zone{Authentic: true, Records: []string{
				"dane.example. MX 10 mx1.dane.example.",
				"mx1.dane.example. A 127.0.0.1",
				"_" + mxPort + "._tcp.mx1.dane.example. TLSA " + dane.Format(dane.Record(3, 1, 1, tt.cert)),
			}})
			dir := t.TempDir()
			cfg := filepath.Join(dir, "probe.toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`hostname = "probe.test.example"
data_dir = %q
[[domain]]
name = "probe.test.example"
[tls]
self_signed = true
[outbound]
resolver = %q
port = %s
allow_loopback = true
mta_sts = false
`, dir, zone.Addr, mxPort)), 0o600)
			code, out, errOut := runProbeCmd(t, "--json", "-config", cfg, "dane.example")
			var rep struct {
				Domains []struct {
					MX   struct{ DNSSEC string } `json:"mx"`
					Hops []struct {
						Mechanism        string `json:"mechanism"`
						Authenticated    bool   `json:"authenticated"`
						Deliverable      bool   `json:"deliverable"`
						EnforcedTLSFails bool   `json:"enforced_tls_fails"`
						Verdict          string `json:"verdict"`
						TLSA             struct {
							Used bool `json:"used"`
						} `json:"tlsa"`
					} `json:"hops"`
				} `json:"domains"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Domains) != 1 || len(rep.Domains[0].Hops) != 1 {
				t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
			}
			h := rep.Domains[0].Hops[0]
			if code != tt.exit || rep.Domains[0].MX.DNSSEC != "secure" || h.Mechanism != "dane" || !h.Authenticated || !h.TLSA.Used ||
				h.Deliverable != (tt.exit == 0) || h.EnforcedTLSFails != (tt.exit == 5) {
				t.Errorf("exit %d (want %d): %+v\n%s", code, tt.exit, h, out)
			}
		})
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestProbeSmugglingPostfix runs `smtpkit probe --smuggling` against a
// real Postfix smtpd (3.7) that accepts mail for test.example into its
// private queue: with smtpd_forbid_bare_newline = no (Postfix before its
// smuggling fixes takes a bare LF as a line end) the three LF endings are
// reported vulnerable, exit 6; with smtpd_forbid_bare_newline = yes (and
// no exclusions: loopback is in mynetworks) none is — Postfix then takes
// them as content. Each run queues at most one message per ending.
func TestProbeSmugglingPostfix(t *testing.T) {
	for _, tt := range []struct {
		forbid string
		exit   int
	}{{"no", 6}, {"yes", 0}} {
		t.Run("smtpd_forbid_bare_newline="+tt.forbid, func(t *testing.T) {
			addr := startPostfixWith(t, "", "", "mydestination = test.example\nlocal_recipient_maps =\nsmtpd_error_sleep_time = 0\nsmtpd_peername_lookup = no\n"+
				"smtpd_forbid_bare_newline = "+tt.forbid+"\nsmtpd_forbid_bare_newline_exclusions =\n")
			start := time.Now()
			code, out, errOut := runProbeCmd(t, "--smuggling", "--rcpt", "postmaster@test.example", "--json", "-v", addr)
			t.Logf("the self-test took %v", time.Since(start).Round(time.Millisecond))
			var rep struct {
				Smuggling []struct {
					Vulnerable bool `json:"vulnerable"`
					Endings    []struct {
						Ending, Outcome, Reply, Detail string
					} `json:"endings"`
					Transcript []string `json:"transcript"`
				} `json:"smuggling"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Smuggling) != 1 {
				t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
			}
			r := rep.Smuggling[0]
			outcomes := map[string]string{}
			for _, e := range r.Endings {
				outcomes[e.Ending] = e.Outcome
				t.Logf("%s: %s (%s) %s", e.Ending, e.Outcome, e.Reply, e.Detail)
			}
			if code != tt.exit || r.Vulnerable != (tt.exit == 6) {
				t.Errorf("exit %d (want %d), vulnerable %v", code, tt.exit, r.Vulnerable)
			}
			for _, lf := range []string{`"\n.\n"`, `"\n.\r\n"`, `"\r\n.\n"`} {
				if want := map[bool]string{true: "vulnerable", false: "content"}[tt.exit == 6]; outcomes[lf] != want {
					t.Errorf("%s: %s, want %s", lf, outcomes[lf], want)
				}
			}
			if t.Failed() {
				t.Logf("transcript:\n%s", strings.Join(r.Transcript, "\n"))
			}
		})
	}
}
