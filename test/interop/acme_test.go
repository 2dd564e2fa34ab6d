package interop

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
)

// The ACME tests (docs/testing.md) keep to 127.17.6.0/24: smtpkit and its
// challenge listener on .1 (tls-alpn-01) and .3 (http-01), a pebble for
// each on .2 and .4, the DNS server pebble resolves the names with on .53.
const (
	acmeALPNIP      = "127.17.6.1"
	acmeALPNPebble  = "127.17.6.2"
	acmeHTTPIP      = "127.17.6.3"
	acmeHTTPPebble  = "127.17.6.4"
	acmeDNSIP       = "127.17.6.53"
	acmeHTTPName    = "mail.acme-http.test" // acme.names of the http-01 test
	acmeTLSPort     = 5001                  // where pebble checks tls-alpn-01 (443 in production)
	acmeHTTPPort    = 5002                  // where pebble checks http-01 (80 in production)
	pebbleReadyWait = 10 * time.Second
	acmeWait        = 15 * time.Second // bound for a certificate to be issued or renewed
)

// needPebble returns the pebble binary scripts/install-test-deps.sh
// installs with `go install` into $(go env GOPATH)/bin (or one on PATH).
func needPebble(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		missing(t, "pebble", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "pebble")
	if _, err := os.Stat(p); err != nil {
		missing(t, "pebble", err)
	}
	return p
}

// pebble is a running Let's Encrypt test CA.
type pebble struct {
	bin, config string
	ip          string
	api         *tls.Certificate // its HTTPS certificate, the CA file smtpkit trusts (acme.ca)
	caFile      string
	cmd         *exec.Cmd
	done        chan struct{}
	logs        *syncBuffer
	dns         string
}

// startPebble runs pebble on ip (directory on :14000, management on
// :15000), validating challenges on acmeTLSPort/acmeHTTPPort of the
// addresses dns gives for the names, issuing certificates valid for
// validity seconds. Challenges are really validated: PEBBLE_VA_NOSLEEP
// only skips pebble's random delay before it validates.
func startPebble(t *testing.T, ip, dns string, validity int) *pebble {
	t.Helper()
	p := newPebble(t, ip, dns, validity)
	p.start(t)
	return p
}

// newPebble is startPebble without the start.
func newPebble(t *testing.T, ip, dns string, validity int) *pebble {
	t.Helper()
	dir := t.TempDir()
	api := testcert.New(t, ip)
	certFile, keyFile := testcert.WriteFiles(t, api, dir)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           ip + ":14000",
		"managementListenAddress": ip + ":15000",
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                acmeHTTPPort,
		"tlsPort":                 acmeTLSPort,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles":                map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	b, _ := json.Marshal(conf)
	p := &pebble{config: filepath.Join(dir, "pebble.json"), ip: ip, api: &api, caFile: certFile, logs: &syncBuffer{},
		bin: needPebble(t), dns: dns}
	if err := os.WriteFile(p.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pebble output:\n%s", p.logs.String())
		}
	})
	return p
}

func (p *pebble) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "-config", p.config, "-dnsserver", p.dns)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	client := p.httpClient()
	for deadline := time.Now().Add(pebbleReadyWait); ; {
		res, err := client.Get(p.directory())
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("pebble exited: %v\n%s", p.cmd.ProcessState, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not serving %s after %v: %v\n%s", p.directory(), pebbleReadyWait, err, p.logs.String())
		}
		time.Sleep(pollStep) // polling the directory, bounded above
	}
}

// stop kills pebble (its state is in memory: a new start is a new CA).
func (p *pebble) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *pebble) directory() string { return "https://" + p.ip + ":14000/dir" }

func (p *pebble) httpClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: testcert.Pool(*p.api)}}}
}

// roots returns the pool of pebble's current issuing root (management
// interface, /roots/0).
func (p *pebble) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	res, err := p.httpClient().Get("https://" + p.ip + ":15000/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if blk, _ := pem.Decode(b); blk == nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %q", b)
	}
	return pool
}

// acmeTOML is the [acme] section for a test.
func acmeTOML(p *pebble, challenge, address, names string) string {
	s := fmt.Sprintf("[acme]\ndirectory = %q\nemail = \"postmaster@test.example\"\nchallenge = %q\nchallenge_address = %q\nca = %q\nretry_min = \"300ms\"\nretry_max = \"1s\"\n",
		p.directory(), challenge, address, p.caFile)
	if names != "" {
		s += "names = [" + names + "]\n"
	}
	return s
}

// smtpTLS is one SMTP session over TLS (STARTTLS on mx, implicit TLS on
// submissions) by Go's net/smtp, verifying the chain against roots for
// name; it returns the client, open, and the served leaf.
func smtpTLS(t *testing.T, addr, name string, implicit bool, roots *x509.CertPool) (*smtp.Client, *x509.Certificate, error) {
	t.Helper()
	conf := &tls.Config{ServerName: name, RootCAs: roots}
	var c *smtp.Client
	if implicit {
		conn, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			return nil, nil, err
		}
		if c, err = smtp.NewClient(conn, name); err != nil {
			return nil, nil, err
		}
	} else {
		var err error
		if c, err = smtp.Dial(addr); err != nil {
			return nil, nil, err
		}
		if err := c.Hello("client.test"); err != nil {
			return nil, nil, err
		}
		if err := c.StartTLS(conf); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	st, ok := c.TLSConnectionState()
	if !ok {
		c.Close()
		return nil, nil, errors.New("no TLS")
	}
	return c, st.PeerCertificates[0], nil
}

// servedSerial is the serial of the leaf a new session sees (chain not
// verified: for watching a swap).
func servedSerial(t *testing.T, addr, name string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// waitSerial polls until a new session on addr sees a serial other than
// old, within acmeWait.
func waitSerial(t *testing.T, addr, name, old string) string {
	t.Helper()
	for deadline := time.Now().Add(acmeWait); ; {
		if s := servedSerial(t, addr, name); s != old {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still serves %s after %v", addr, old, acmeWait)
		}
		time.Sleep(50 * time.Millisecond) // polling the served certificate, bounded above
	}
}

// sendOn sends one message on an open session and quits.
func sendOn(t *testing.T, c *smtp.Client, rcpt, subject string) {
	t.Helper()
	if err := c.Mail("sender@outside.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: sender@outside.example\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n", rcpt, subject)
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// TestACMETLSALPN01: serve starts with no certificate and obtains one from
// pebble through tls-alpn-01 (RFC 8737) before it says ready; STARTTLS
// and implicit TLS then present the pebble-issued chain for the hostname.
// Pebble issues for 6 s, so renewal comes at 4 s: the new serial is
// served to new sessions while a session opened before goes on and
// delivers. With pebble down the renewal fails, is logged and retried
// with a growing backoff while the last certificate keeps serving; a new
// pebble (a new CA, which knows no account) is then met with a new
// account and certificate.
func TestACMETLSALPN01(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{Host: acmeDNSIP, Records: []string{testHostname + ". A " + acmeALPNIP}})
	p := startPebble(t, acmeALPNPebble, dns.Addr, 7)
	// The test's client (127.0.0.1) is trusted: watching for a swap polls
	// the listener faster than limits.connection_rate allows one client.
	s := StartServer(t, ServerOptions{IP: acmeALPNIP, TopTOML: `trusted_networks = ["127.0.0.1"]`,
		ExtraTOML: acmeTOML(p, "tls-alpn-01", fmt.Sprintf("%s:%d", acmeALPNIP, acmeTLSPort), "")})
	s.AddUser(t, "alice@"+testDomain, "pw-alice-1")
	roots := p.roots(t)

	open, leaf, err := smtpTLS(t, s.MX, testHostname, false, roots)
	if err != nil {
		t.Fatalf("STARTTLS with pebble's chain after ready: %v\n%s", err, s.Logs())
	}
	if leaf.DNSNames[0] != testHostname || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("served %v issued by %q", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	if c, l2, err := smtpTLS(t, s.Submissions, testHostname, true, roots); err != nil {
		t.Errorf("implicit TLS: %v", err)
	} else {
		c.Close()
		if l2.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Errorf("implicit TLS serves serial %x, STARTTLS %x", l2.SerialNumber, leaf.SerialNumber)
		}
	}
	for name, mode := range map[string]os.FileMode{"account.key": 0o600, "key.pem": 0o600, "cert.pem": 0o644} {
		if st, err := os.Stat(filepath.Join(s.DataDir, "acme", name)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("<data_dir>/acme/%s: %v %v, want mode %v", name, st, err, mode)
		}
	}

	// Renewal at two thirds of the lifetime, while a session is open.
	first := leaf.SerialNumber.Text(16)
	renewed := waitSerial(t, s.Submissions, testHostname, first)
	if c, l2, err := smtpTLS(t, s.Submissions, testHostname, true, roots); err != nil || l2.SerialNumber.Text(16) != renewed {
		t.Errorf("implicit TLS after renewal: %v, %v", l2, err)
	} else {
		c.Close()
	}
	sendOn(t, open, "alice@"+testDomain, "opened before the renewal")
	s.WaitMessages(t, "alice@"+testDomain, 1)
	if !strings.Contains(s.Logs(), "acme: certificate installed") {
		t.Error("no \"acme: certificate installed\" log line")
	}

	// Pebble down: failures logged with a growing backoff, the renewed
	// certificate keeps serving (even past its expiry).
	p.stop()
	for deadline := time.Now().Add(acmeWait); strings.Count(s.Logs(), "acme: certificate not obtained") < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 failed attempts logged after pebble stopped:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond) // polling the log, bounded above
	}
	// The last certificate installed (renewed, or one more renewal that came
	// before pebble stopped): the failures came after it.
	last := servedSerial(t, s.Submissions, testHostname)
	logs := s.Logs()
	for _, want := range []string{"retry_in=300ms", "retry_in=600ms", "retry_in=1s", "serving_serial=" + last} {
		if !strings.Contains(logs, want) {
			t.Errorf("log has no %q", want)
		}
	}
	if got := servedSerial(t, s.Submissions, testHostname); got != last {
		t.Errorf("with pebble down a new session sees %s, want the last certificate %s", got, last)
	}

	// A new pebble: a new root, no account yet.
	p.start(t)
	roots = p.roots(t)
	third := waitSerial(t, s.Submissions, testHostname, last)
	c, l3, err := smtpTLS(t, s.MX, testHostname, false, roots)
	if err != nil {
		t.Fatalf("STARTTLS with the new pebble's chain: %v", err)
	}
	c.Quit()
	if l3.SerialNumber.Text(16) != third {
		t.Errorf("serial %x, want %s", l3.SerialNumber, third)
	}

	// acme.email changed: the next order updates the account's contact
	// (RFC 8555 §7.3.2) and pebble takes it.
	conf, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), `email = "postmaster@test.example"`, `email = "hostmaster@test.example"`, 1))
	if err := os.WriteFile(s.ConfigPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	for deadline := time.Now().Add(acmeWait); !strings.Contains(s.Logs(), `acme: account contact updated" names=mx.test.example contact=mailto:hostmaster@test.example`); {
		if time.Now().After(deadline) {
			t.Fatalf("no contact update after the email changed:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond) // polling the log, bounded above
	}
}

// TestACMEHTTP01: with challenge = "http-01" and acme.names, serve started
// while the CA is down says ready with a self-signed stand-in, and gets
// the certificate through http-01 once pebble runs (the retry with
// backoff) and keeps it over a SIGHUP reload; a restart with pebble
// stopped serves the stored certificate (no order, no stand-in).
func TestACMEHTTP01(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{Host: acmeDNSIP, Records: []string{acmeHTTPName + ". A " + acmeHTTPIP}})
	p := newPebble(t, acmeHTTPPebble, dns.Addr, 0)
	s := StartServer(t, ServerOptions{IP: acmeHTTPIP, TopTOML: `trusted_networks = ["127.0.0.1"]`, // polled, as above
		ExtraTOML: acmeTOML(p, "http-01", fmt.Sprintf("%s:%d", acmeHTTPIP, acmeHTTPPort), `"`+acmeHTTPName+`"`)})
	standIn := servedSerial(t, s.Submissions, acmeHTTPName)
	if !strings.Contains(s.Logs(), "acme (self-signed stand-in until issued)") || !strings.Contains(s.Logs(), "serving a self-signed stand-in") {
		t.Errorf("serve did not say it serves a stand-in:\n%s", s.Logs())
	}
	p.start(t)
	waitSerial(t, s.Submissions, acmeHTTPName, standIn)
	roots := p.roots(t)
	c, leaf, err := smtpTLS(t, s.Submissions, acmeHTTPName, true, roots)
	if err != nil {
		t.Fatalf("implicit TLS with pebble's chain for %s: %v\n%s", acmeHTTPName, err, s.Logs())
	}
	c.Quit()
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 80*24*time.Hour {
		t.Errorf("lifetime %v, want pebble's 90-day default", life)
	}
	// SIGHUP re-reads the certificate files (none here) and keeps the
	// ACME certificate in front.
	s.hup(t)
	waitLog(t, s, "configuration reloaded", 1)
	if got := servedSerial(t, s.Submissions, acmeHTTPName); got != leaf.SerialNumber.Text(16) {
		t.Errorf("after SIGHUP serial %s, want the ACME certificate's %x", got, leaf.SerialNumber)
	}
	// The challenge listener is gone once the order is done.
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", acmeHTTPIP, acmeHTTPPort), time.Second); err == nil {
		conn.Close()
		t.Error("the http-01 listener is still bound after the order")
	}

	p.stop()
	s.Restart(t)
	c, again, err := smtpTLS(t, s.MX, acmeHTTPName, false, roots)
	if err != nil {
		t.Fatalf("STARTTLS after a restart with pebble down: %v", err)
	}
	c.Quit()
	if again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after the restart serial %x, want the stored %x", again.SerialNumber, leaf.SerialNumber)
	}
	logs := s.Logs()
	if !strings.Contains(logs, "acme: using the stored certificate") || !strings.Contains(logs, "certificate "+acmeHTTPName+" (acme)") {
		t.Errorf("after the restart: no \"acme: using the stored certificate\" or the served certificate:\n%s", logs)
	}
	if n := strings.Count(logs, "acme: ordering a certificate"); n != 1 {
		t.Errorf("%d orders started, want 1 (none after the restart)", n)
	}
}
