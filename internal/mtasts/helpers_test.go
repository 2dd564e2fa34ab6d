package mtasts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
)

// nextIP hands each test server its own address of 127.13.2.0/24, the
// range of this package's tests (/work/wt/CONTRACT-13.md).
var nextIP atomic.Uint32

func testIP() string { return fmt.Sprintf("127.13.2.%d", 10+nextIP.Add(1)%240) }

// unusedIP is an address of the range nothing listens on: "host down".
const unusedIP = "127.13.2.1"

// issue returns a certificate for names signed by ca, edited by edit.
func issue(t testing.TB, ca tls.Certificate, edit func(*x509.Certificate), names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Certificate[0]}, PrivateKey: key, Leaf: leaf}
}

// host is how the test HTTPS server answers for one policy host.
type host struct {
	cert        *tls.Certificate // nil: issued by the test CA for the host name
	status      int              // 0: 200
	contentType string           // "": text/plain
	location    string
	body        string
	block       bool // wait for the request to be cancelled (timeouts)
}

// policyServer is a TLS server on one 127.13.2.x address serving policies
// for many hosts, chosen by SNI and Host.
type policyServer struct {
	IP   string
	Port int
	CA   tls.Certificate

	t       testing.TB
	mu      sync.Mutex
	hosts   map[string]host
	certs   map[string]*tls.Certificate
	hits    map[string]int
	release chan struct{} // closed to let blocked handlers go on
	waiting int           // handlers blocked on release
}

func newPolicyServer(t testing.TB, tlsMax uint16) *policyServer {
	t.Helper()
	s := &policyServer{
		IP: testIP(), CA: testcert.New(t, "smtpkit mtasts test CA"), t: t,
		hosts: map[string]host{}, certs: map[string]*tls.Certificate{}, hits: map[string]int{},
		release: make(chan struct{}),
	}
	l, err := net.Listen("tcp", s.IP+":0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{GetCertificate: s.certificate, MaxVersion: tlsMax}
	srv.StartTLS()
	t.Cleanup(func() {
		s.unblock()
		srv.Close()
	})
	return s
}

// set says how name (mta-sts.<domain>) answers.
func (s *policyServer) set(name string, h host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[name] = h
	if h.cert == nil {
		c := issue(s.t, s.CA, nil, name)
		h.cert = &c
	}
	s.certs[name] = h.cert
}

func (s *policyServer) unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// Hits is how many requests name got.
func (s *policyServer) Hits(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name]
}

// Waiting is how many requests are blocked in handlers.
func (s *policyServer) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *policyServer) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.certs[hello.ServerName]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
}

func (s *policyServer) serve(w http.ResponseWriter, r *http.Request) {
	name, _, _ := strings.Cut(r.Host, ":")
	s.mu.Lock()
	h, ok := s.hosts[name]
	s.hits[name]++
	if h.block {
		s.waiting++
	}
	release := s.release
	s.mu.Unlock()
	if !ok || r.URL.Path != wellKnownPath {
		http.NotFound(w, r)
		return
	}
	if h.block {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}
	ct := h.contentType
	if ct == "" {
		ct = "text/plain"
	}
	w.Header().Set("Content-Type", ct)
	if h.location != "" {
		w.Header().Set("Location", h.location)
	}
	status := h.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	io.WriteString(w, h.body)
}

// swapResolver is a Resolver whose DNS server a test replaces, to change
// the records between two lookups.
type swapResolver struct {
	mu  sync.Mutex
	srv *dnstest.Server
	res *dns.Client
}

func (r *swapResolver) set(t testing.TB, z dnstest.Zone) {
	t.Helper()
	srv := dnstest.Start(t, z)
	res, err := dns.New(dns.Options{Servers: []string{srv.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.srv, r.res = srv, res
	r.mu.Unlock()
}

func (r *swapResolver) get() *dns.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

// Queries is how many questions the current server got.
func (r *swapResolver) Queries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.srv.Queries())
}

func (r *swapResolver) LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error) {
	return r.get().LookupTXT(ctx, name)
}

func (r *swapResolver) LookupIP(ctx context.Context, host string) (dns.IPAnswer, error) {
	return r.get().LookupIP(ctx, host)
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// policyText builds a policy body.
func policyText(mode Mode, maxAge int, mx ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\r\nmode: %s\r\n", mode)
	for _, m := range mx {
		fmt.Fprintf(&b, "mx: %s\r\n", m)
	}
	fmt.Fprintf(&b, "max_age: %d\r\n", maxAge)
	return b.String()
}

// txt is the zone line of an MTA-STS TXT record.
func txt(domain, record string) string {
	return fmt.Sprintf("_mta-sts.%s. TXT %q", domain, record)
}

// addr is the zone line of the policy host's A record.
func addr(domain, ip string) string { return fmt.Sprintf("mta-sts.%s. A %s", domain, ip) }

// env is one test's world: a policy server, DNS, a clock and a cache.
type env struct {
	srv   *policyServer
	dns   *swapResolver
	clock *clock
	dir   string
	opts  Options
	cache *Cache
}

func newEnv(t testing.TB, records ...string) *env {
	t.Helper()
	e := &env{srv: newPolicyServer(t, 0), dns: &swapResolver{}, clock: newClock(), dir: t.TempDir()}
	e.setDNS(t, records...)
	e.opts = Options{
		Dir: e.dir, Resolver: e.dns, Roots: testcert.Pool(e.srv.CA), Port: e.srv.Port,
		Now: e.clock.Now, AllowLoopback: true,
	}
	return e
}

// setDNS replaces the records; "$IP" stands for the policy server's address.
func (e *env) setDNS(t testing.TB, records ...string) {
	t.Helper()
	var z dnstest.Zone
	for _, r := range records {
		z.Records = append(z.Records, strings.ReplaceAll(r, "$IP", e.srv.IP))
	}
	e.dns.set(t, z)
}

func (e *env) open(t testing.TB) *Cache {
	t.Helper()
	c, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.cache = c
	return c
}

// lookup runs Lookup, then waits for the background check it may have
// started and looks up again: the answers before and after the check.
func (e *env) lookup(t *testing.T, domain string) (first *Policy, firstErr error, after *Policy, afterErr error) {
	t.Helper()
	first, firstErr = e.cache.Lookup(context.Background(), domain)
	e.cache.running.Wait()
	after, afterErr = e.cache.Lookup(context.Background(), domain)
	return
}

// dnstestZone is a zone of records with SERVFAIL for the names servFail.
func dnstestZone(records []string, servFail ...string) dnstest.Zone {
	return dnstest.Zone{Records: records, ServFail: servFail}
}

func replaceIP(record, ip string) string { return strings.ReplaceAll(record, "$IP", ip) }
