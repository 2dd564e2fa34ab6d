package interop

// Fixtures of the enforced-TLS bench (issue #13), besides the DNS of
// dnssec_bench_test.go: a test CA and the certificates it issues (valid,
// expired, wrong name) next to self-signed ones; HTTPS servers publishing
// MTA-STS policies on 127.13.7.x:443; receiving servers on 127.13.7.x:25 —
// `smtpkit serve` with a given certificate, and Postfix —; and the daemon
// under test, which resolves through the bench's unbound and trusts the
// test CA (outbound.ca_file and SSL_CERT_FILE).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"smtpkit/internal/testcert"
)

// Addresses of the bench's servers in 127.13.7.0/24 (the DNS servers are
// .53 and .54). Receivers use .10–.39, policy servers .40–.49.
const (
	benchSenderHost = "sender.test.example" // hostname of the daemon under test
	benchPolicyPath = "/.well-known/mta-sts.txt"
)

// benchIP returns 127.13.7.n.
func benchIP(n int) string { return fmt.Sprintf("127.13.7.%d", n) }

// --- certificates ------------------------------------------------------------

// benchCA is the test certificate authority: the daemon under test trusts
// it (and nothing else matters on loopback) as it would a WebPKI root.
type benchCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string // the CA certificate (PEM), for ca_file and SSL_CERT_FILE
}

// newBenchCA makes a CA valid for a day and writes its certificate.
func newBenchCA(t *testing.T) *benchCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtpkit bench13 test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &benchCA{cert: cert, key: key, File: filepath.Join(benchCertDir(t), "ca.pem")}
	if err := os.WriteFile(ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue returns a server certificate for names signed by the CA, valid
// from notBefore to notAfter; the chain holds the leaf and the CA.
func (ca *benchCA) issue(t *testing.T, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// valid is a CA-issued certificate for names, valid now.
func (ca *benchCA) valid(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	return ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
}

// expired is a CA-issued certificate for names that expired an hour ago.
func (ca *benchCA) expired(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	return ca.issue(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), names...)
}

// selfSigned is a self-signed certificate for names, valid for a day.
func selfSigned(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	return testcert.NewFor(t, 24*time.Hour, names...)
}

// benchCertDir is a new directory other users may enter (the daemons of
// a private Postfix instance run as the postfix user), removed when the
// test ends.
func benchCertDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeChain writes cert's whole chain and its key as PEM files.
func writeChain(t *testing.T, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = testcert.WriteFiles(t, cert, benchCertDir(t))
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// tlsaEE is the DANE-EE record "3 1 1 <SHA-256 of the leaf's SPKI>" (RFC
// 7671 §5.1 recommends exactly this form), computed here rather than by
// the code under test.
func tlsaEE(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return "3 1 1 " + hex.EncodeToString(sum[:])
}

// tlsaTA is the DANE-TA record "2 0 1 <SHA-256 of the CA certificate>".
func (ca *benchCA) tlsaTA() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return "2 0 1 " + hex.EncodeToString(sum[:])
}

// --- MTA-STS policy servers --------------------------------------------------

// stsServer is an HTTPS server on ip:443 publishing one MTA-STS policy
// (RFC 8461 §3.2) at /.well-known/mta-sts.txt.
type stsServer struct {
	Addr     string
	srv      *http.Server
	requests atomic.Int32
	done     chan struct{}
}

// stsPolicy is the policy text for mode, max_age and mx patterns, with CRLF
// line ends as §3.2 shows.
func stsPolicy(mode string, maxAge int, mx ...string) string {
	lines := []string{"version: STSv1", "mode: " + mode}
	for _, m := range mx {
		lines = append(lines, "mx: "+m)
	}
	lines = append(lines, fmt.Sprintf("max_age: %d", maxAge))
	return strings.Join(lines, "\r\n") + "\r\n"
}

// startSTSServer serves policy over HTTPS on ip:443 with cert; anything
// but the policy path is a 404. It stops when the test ends (or on Stop).
func startSTSServer(t *testing.T, ip string, cert tls.Certificate, policy string) *stsServer {
	t.Helper()
	s := &stsServer{Addr: net.JoinHostPort(ip, "443"), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(benchPolicyPath, func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(policy))
	})
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: mux, TLSConfig: testcert.ServerConfig(cert), ReadHeaderTimeout: outWait,
		ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes are what some tests want
	go func() { s.srv.ServeTLS(l, "", ""); close(s.done) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop closes the server: the policy host is down from now on.
func (s *stsServer) Stop() {
	s.srv.Close()
	<-s.done
}

// Requests is how many times the policy was fetched.
func (s *stsServer) Requests() int { return int(s.requests.Load()) }

// --- receiving servers -------------------------------------------------------

// mxSpec is a receiving MX of startBenchMXs: `smtpkit serve` on ip:25
// only, with hostname host, STARTTLS per tlsMode ("opportunistic", or
// "none" for a server that does not offer it), serving cert, with a
// mailbox for each of rcpts (their domains become local domains).
type mxSpec struct {
	ip, host, tlsMode string
	cert              tls.Certificate
	rcpts             []string
}

// startBenchMX starts one receiving MX (see mxSpec).
func startBenchMX(t *testing.T, ip, host, tlsMode string, cert tls.Certificate, rcpts ...string) *Server {
	t.Helper()
	return startBenchMXs(t, mxSpec{ip, host, tlsMode, cert, rcpts})[0]
}

// startBenchMXs starts the receivers of specs at once — each start and
// mailbox creation is a run of the binary, seconds under -race on a busy
// machine — and returns them once all are ready.
func startBenchMXs(t *testing.T, specs ...mxSpec) []*Server {
	t.Helper()
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatalf("building smtpkit: %v", err)
	}
	servers := make([]*Server, len(specs))
	for i, spec := range specs {
		servers[i] = newBenchMX(t, bin, spec)
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = s.tryStart(); errs[i] != nil {
				return
			}
			for _, r := range specs[i].rcpts {
				if errs[i] = benchAddUser(s, r); errs[i] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return servers
}

// newBenchMX writes spec's config and certificate; the server is stopped
// (and its output printed if the test failed) when the test ends.
func newBenchMX(t *testing.T, bin string, spec mxSpec) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		Dir: dir, DataDir: filepath.Join(dir, "data"), ConfigPath: filepath.Join(dir, "smtpkit.toml"),
		MX: net.JoinHostPort(spec.ip, "25"), bin: bin, logs: &syncBuffer{},
	}
	s.CertPath, _ = writeChain(t, spec.cert)
	keyPath := filepath.Join(filepath.Dir(s.CertPath), "key.pem")
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\ndata_dir = %q\n\n[log]\nformat = \"text\"\nlevel = \"debug\"\n\n", spec.host, s.DataDir)
	seen := map[string]bool{}
	for _, r := range spec.rcpts {
		if d := r[strings.LastIndexByte(r, '@')+1:]; !seen[d] {
			seen[d] = true
			fmt.Fprintf(&b, "[[domain]]\nname = %q\n\n", d)
		}
	}
	fmt.Fprintf(&b, "[[listener]]\naddress = %q\nrole = \"mx\"\ntls = %q\n\n", s.MX, spec.tlsMode)
	fmt.Fprintf(&b, "[[tls.certificate]]\ncert = %q\nkey = %q\n", s.CertPath, keyPath)
	if err := os.WriteFile(s.ConfigPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("receiver %s (%s) output:\n%s", spec.host, s.MX, s.logs.String())
		}
	})
	return s
}

// benchAddUser is Server.AddUser returning its failure, for goroutines.
func benchAddUser(s *Server, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "user", "add", "-config", s.ConfigPath, addr)
	cmd.Dir = s.Dir
	cmd.Stdin = strings.NewReader("bench13 mailbox password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("smtpkit user add %s: %v\n%s", addr, err, out)
	}
	return nil
}

// benchPostfix is a private Postfix instance receiving on ip:25 for one
// virtual mailbox; it has STARTTLS (unless told not to) and, like every
// Postfix, no REQUIRETLS.
type benchPostfixConf struct {
	relayConfig
	IP, Host, Domain, TLSLevel string
}

// startBenchPostfix starts Postfix as the receiving MX host on ip:25 with
// cert, accepting mail for rcpts only (virtual(8) into Maildirs), which
// must share one domain.
// tlsLevel is smtpd_tls_security_level: "may", or "none" for no STARTTLS.
func startBenchPostfix(t *testing.T, ip, host, tlsLevel string, cert tls.Certificate, rcpts ...string) *relayPostfix {
	t.Helper()
	postfix := Need(t, "postfix")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	dir, err := os.MkdirTemp("", "smtpkit-bench13-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	uid, gid := relayPostfixIDs(t)
	c := benchPostfixConf{
		relayConfig: relayConfig{
			Addr: net.JoinHostPort(ip, "25"), Conf: filepath.Join(dir, "conf"), Queue: filepath.Join(dir, "queue"),
			Data: filepath.Join(dir, "data"), Mail: filepath.Join(dir, "mail"), UID: uid, GID: gid,
		},
		IP: ip, Host: host, Domain: rcpts[0][strings.LastIndexByte(rcpts[0], '@')+1:], TLSLevel: tlsLevel,
	}
	for _, d := range []string{c.Conf, c.Queue, c.Data, c.Mail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{c.Data, c.Mail} {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.Cert, c.Key = writeChain(t, cert)
	renderRelayTemplate(t, "master.cf", filepath.Join(c.Conf, "master.cf"), c.relayConfig)
	renderBenchTemplate(t, "postfix-main.cf", filepath.Join(c.Conf, "main.cf"), c)
	var vmailbox strings.Builder
	for _, rcpt := range rcpts {
		local := rcpt[:strings.LastIndexByte(rcpt, '@')]
		fmt.Fprintf(&vmailbox, "%s %s/%s/\n", rcpt, c.Domain, local) // trailing slash: a Maildir
	}
	if err := os.WriteFile(filepath.Join(c.Conf, "vmailbox"), []byte(vmailbox.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &relayPostfix{addr: c.Addr, mail: c.Mail, logs: &syncBuffer{}}
	cmd := exec.Command(postfix, "-c", c.Conf, "start-fg")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopRelayPostfix(postfix, c.Conf, cmd, p.logs)
		if t.Failed() || testing.Verbose() {
			t.Logf("postfix %s logs:\n%s", host, p.logs.String())
		}
	})
	probeWaitListening(t, c.Addr, p.logs)
	return p
}

// renderBenchTemplate executes testdata/dnssec/name into dst.
func renderBenchTemplate(t *testing.T, name, dst string, data any) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "dnssec", name))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --- the daemon under test ---------------------------------------------------

// benchSender starts the daemon under test: smtpkit resolving through the
// bench's unbound, allowed to deliver to loopback MX hosts on port 25,
// trusting the test CA for outbound.ca_file and, through SSL_CERT_FILE,
// as the system roots (MTA-STS policy fetches use those). outbound are
// extra lines of the [outbound] table, e.g. "dane = true".
func benchSender(t *testing.T, ca *benchCA, outbound ...string) *Server {
	t.Helper()
	return benchSenderWith(t, ca, "", outbound...)
}

// benchSenderWith is benchSender with more tables (TOML) in the config.
func benchSenderWith(t *testing.T, ca *benchCA, tables string, outbound ...string) *Server {
	t.Helper()
	t.Setenv("SSL_CERT_FILE", ca.File)
	conf := outConf{resolver: benchResolverAddr, caFile: ca.File}.toml()
	conf = strings.Replace(conf, "[outbound]\n", "[outbound]\n"+strings.Join(append(outbound, ""), "\n"), 1)
	s := StartServer(t, ServerOptions{ExtraTOML: conf + "\n" + tables})
	s.AddUser(t, outSender, outPassword)
	return s
}

// deliveryResults sums the daemon's smtpkit_delivery_results_total
// counters (GET /metrics on metricsAddr) by result and tls_mechanism,
// e.g. "delivered dane".
func deliveryResults(t *testing.T, metricsAddr string) map[string]int {
	t.Helper()
	hc := &http.Client{Timeout: outWait}
	resp, err := hc.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`(?m)^smtpkit_delivery_results_total\{([^}]*)\} ([0-9.e+]+)$`)
	label := regexp.MustCompile(`(\w+)="([^"]*)"`)
	out := map[string]int{}
	for _, m := range series.FindAllStringSubmatch(string(body), -1) {
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		var v float64
		fmt.Sscan(m[2], &v)
		out[labels["result"]+" "+labels["tls_mechanism"]] += int(v)
	}
	return out
}
