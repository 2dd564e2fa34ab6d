package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/dnsbl"
)

// The DNSBL tests keep to 127.15.3.0/24: smtpkit listens on dnsblHost,
// rbldnsd on rbldnsdHost, and each kind of client has its own source
// address, listed (or not) in the zones below.
const (
	dnsblHost   = "127.15.3.1"
	rbldnsdHost = "127.15.3.53"

	dnsblListedIP  = "127.15.3.10" // on bl.test
	dnsblCleanIP   = "127.15.3.11" // on no list
	dnsblAllowedIP = "127.15.3.12" // on bl.test (weight 1) and wl.test (weight -2)
	dnsblTrustedIP = "127.15.3.20" // on bl.test, but in trusted_networks
	dnsblSubmitIP  = "127.15.3.21" // on bl.test, authenticates on submission
	dnsblMXAuthIP  = "127.15.3.22" // on bl.test, authenticates on mx
	dnsblTalkerIP  = "127.15.3.30" // talks before the greeting
	dnsblReason    = "Listed by bl.test: see https://bl.test/q?ip="
)

// rbldnsd is a running rbldnsd (Debian's) serving zones on loopback.
type rbldnsd struct {
	addr string // host:port, UDP
	log  string // its query log (-l)
}

// startRbldnsd runs rbldnsd with zones ("name" or "name:dataset" → the
// dataset file's contents; the dataset is ip4set unless named; one zone
// may have several datasets) on rbldnsdHost until the test ends. rbldnsd will not run as root: it
// drops to the Debian package's rbldns user, so its directory is
// world-readable and its log file is rbldns's.
func startRbldnsd(t *testing.T, zones map[string]string) *rbldnsd {
	t.Helper()
	bin := Need(t, "rbldnsd")
	dir, err := os.MkdirTemp("", "smtpkit-rbldnsd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &rbldnsd{addr: freeAddrOn(t, rbldnsdHost), log: filepath.Join(dir, "queries.log")}
	if err := os.WriteFile(r.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := user.Lookup("rbldns"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(r.log, uid, gid)
	}
	host, port, _ := net.SplitHostPort(r.addr)
	args := []string{"-n", "-u", "rbldns", "-w", dir, "-b", host + "/" + port, "-l", "+" + r.log}
	for spec, data := range zones {
		name, dataset, ok := strings.Cut(spec, ":")
		if !ok {
			dataset = "ip4set"
		}
		file := name + "." + dataset
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, name+":"+dataset+":"+file)
	}
	var out syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Ready when it answers the RFC 5782 §5 test entry of the first zone.
	res, err := dns.New(dns.Options{Servers: []string{r.addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, pollTimeout, "rbldnsd answering", func() bool {
		a, err := res.LookupIP(context.Background(), "2.0.0.127.bl.test")
		return err == nil && len(a.IPs) > 0
	})
	t.Logf("rbldnsd on %s: %s", r.addr, strings.TrimSpace(out.String()))
	return r
}

// queries counts the A queries rbldnsd logged for the entry of ip in
// zone (log lines "time client name type class: result").
func (r *rbldnsd) queries(t *testing.T, ip, zone string) int {
	t.Helper()
	return r.queriesOf(t, ip, zone, "A")
}

// queriesOf counts the queries of type qtype for ip's entry in zone.
func (r *rbldnsd) queriesOf(t *testing.T, ip, zone, qtype string) int {
	t.Helper()
	b, err := os.ReadFile(r.log)
	if err != nil {
		t.Fatal(err)
	}
	name := dnsbl.QueryName(netip.MustParseAddr(ip), zone)
	return strings.Count(string(b), " "+name+" "+qtype+" IN")
}

// TestDNSBLRbldnsd: smtpkit screens mx clients against a block list and
// an allow list served by a real rbldnsd (its resolver is rbldnsd:
// nothing else in these sessions asks DNS). swaks from a listed address
// gets 554 5.7.1 naming the zone, the answer and the list's TXT reason;
// from an unlisted one and from one the allow list outweighs, the
// message is delivered; a trusted client is never looked up, an
// authenticated one on submission neither and on mx is not refused; a
// second client from the listed address is answered from the cache; a
// raw client that talks before the greeting gets 554 and is dropped;
// /metrics counts the hits per zone and the early talker.
func TestDNSBLRbldnsd(t *testing.T) {
	swaks := Need(t, "swaks")
	listed := func(ips ...string) string {
		return ":127.0.0.2:" + dnsblReason + "$\n127.0.0.2\n" + strings.Join(ips, "\n") + "\n"
	}
	rbl := startRbldnsd(t, map[string]string{
		"bl.test": listed(dnsblListedIP, dnsblAllowedIP, dnsblTrustedIP, dnsblSubmitIP, dnsblMXAuthIP),
		"wl.test": ":127.0.10.1:allow-listed\n127.0.0.2\n" + dnsblAllowedIP + "\n",
	})
	metricsAddr := freeAddrOn(t, dnsblHost)
	s := StartServer(t, ServerOptions{
		IP:           dnsblHost,
		TopTOML:      fmt.Sprintf("trusted_networks = [%q]\npregreet = \"1s\"\ndnsbl_timeout = \"5s\"", dnsblTrustedIP),
		ListenerTOML: map[string]string{"mx": "auth = true"},
		ExtraTOML: fmt.Sprintf("[outbound]\nresolver = %q\n\n[metrics]\naddress = %q\n\n"+
			"[[dnsbl]]\nzone = \"bl.test\"\n\n[[dnsbl]]\nzone = \"wl.test\"\nweight = -2\n", rbl.addr, metricsAddr),
	})
	const pw = "correct horse battery staple"
	s.AddUser(t, "user@test.example", pw)
	rcpt := "user@test.example"
	send := func(ip, addr string, extra ...string) peerRun {
		t.Helper()
		from := "a@b.example"
		if len(extra) > 0 { // authenticated: the account's own address (RFC 6409 §6.1)
			from = rcpt
		}
		args := append(swaksArgs(s, addr, from, rcpt), "--local-interface", ip,
			"--data", swaksData(t, testMessage("dnsbl-"+ip)))
		return runPeer(t, nil, swaks, append(args, extra...)...)
	}
	delivered := 0
	accepted := func(ip string, r peerRun) {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("swaks from %s: %v\n%s", ip, r.Err, r.Stdout)
		}
		delivered++
		s.WaitMessages(t, rcpt, delivered)
	}

	wantReply := "554 5.7.1 Service unavailable; client [" + dnsblListedIP + "] blocked using bl.test (127.0.0.2: " + dnsblReason + dnsblListedIP + ")"
	for i := range 2 {
		r := send(dnsblListedIP, s.MX)
		if r.Err == nil || !strings.Contains(r.Stdout, wantReply) {
			t.Fatalf("listed client, run %d: want %q refused at RCPT:\n%s", i, wantReply, r.Stdout)
		}
	}
	if n := rbl.queries(t, dnsblListedIP, "bl.test"); n != 1 {
		t.Errorf("rbldnsd asked %d times about %s for two connections, want 1 (the answer's TTL is 35m)", n, dnsblListedIP)
	}
	if n := rbl.queriesOf(t, dnsblListedIP, "bl.test", "AAAA"); n != 0 {
		t.Errorf("rbldnsd was asked %d AAAA queries; lists answer in A records (RFC 5782 §2.1)", n)
	}
	if n := rbl.queriesOf(t, dnsblListedIP, "bl.test", "TXT"); n != 1 {
		t.Errorf("rbldnsd was asked %d TXT queries for the listed client, want 1", n)
	}
	accepted(dnsblCleanIP, send(dnsblCleanIP, s.MX))
	accepted(dnsblAllowedIP, send(dnsblAllowedIP, s.MX))
	accepted(dnsblTrustedIP, send(dnsblTrustedIP, s.MX))
	accepted(dnsblSubmitIP, send(dnsblSubmitIP, s.Submission, "--auth", "PLAIN", "--auth-user", rcpt, "--auth-password", pw))
	accepted(dnsblMXAuthIP, send(dnsblMXAuthIP, s.MX, "--auth", "PLAIN", "--auth-user", rcpt, "--auth-password", pw))
	for _, ip := range []string{dnsblTrustedIP, dnsblSubmitIP} {
		if n := rbl.queries(t, ip, "bl.test") + rbl.queries(t, ip, "wl.test"); n != 0 {
			t.Errorf("%s was looked up %d times; trusted and submission clients are never checked", ip, n)
		}
	}
	if !strings.Contains(s.Logs(), "client blocked by dnsbl") {
		t.Error("the refusal is not logged")
	}

	// An early talker: commands before the greeting.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(dnsblTalkerIP)}}
	c, err := d.Dial("tcp", s.MX)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "EHLO talker.example\r\nMAIL FROM:<a@b.example>\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c) // to the server's close
	if err != nil {
		t.Fatalf("early talker: %v after %q", err, got)
	}
	if !strings.HasPrefix(string(got), "554 ") || !strings.Contains(string(got), "talked before the greeting") || strings.Count(string(got), "\r\n") != 1 {
		t.Errorf("early talker got %q, want one 554 line and the close", got)
	}

	// The counters: hits once per session (the two listed runs, the
	// allow-listed client on both lists, the authenticated mx client),
	// one early talker on the mx listener.
	want := map[string]float64{
		`smtpkit_dnsbl_hits_total{zone="bl.test"}`:                                  4,
		`smtpkit_dnsbl_hits_total{zone="wl.test"}`:                                  1,
		`smtpkit_early_talkers_total{listener="` + s.MX + `"}`:                      1,
		`smtpkit_recipients_refused_total{listener="` + s.MX + `",reason="policy"}`: 2,
	}
	var m map[string]float64
	waitUntil(t, pollTimeout, "the DNSBL and early-talker counters", func() bool {
		m = scrapeHTTP(t, metricsAddr)
		for k, v := range want {
			if m[k] != v {
				return false
			}
		}
		return true
	})
}

// scrapeHTTP is scrape over net/http.
func scrapeHTTP(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	return scrape(t, func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	})
}

// Addresses of TestDNSBLClientAddress.
const (
	dnsblProxyIP    = "127.15.3.40" // a load balancer: proxy_from
	dnsblXClientIP  = "127.15.3.45" // a front end: xclient_from; itself listed
	dnsblBehindIP   = "127.15.3.41" // listed, behind the front ends
	dnsblBehindIP6  = "2001:db8::41"
	dnsblUnlistedIP = "127.15.3.42"
)

// TestDNSBLClientAddress: the lookup is about the client the session
// names, not the TCP peer: behind a PROXY header (v1, TCP4 and TCP6) and
// after swaks' XCLIENT (which starts the session over: a new lookup),
// rbldnsd serving the IPv4 entries (ip4set) and the IPv6 ones (ip6trie,
// the RFC 5782 §2.4 nibble names) of one zone. The front ends, both
// listed, are not what is judged.
func TestDNSBLClientAddress(t *testing.T) {
	swaks := Need(t, "swaks")
	reason := ":127.0.0.2:Listed: $\n"
	rbl := startRbldnsd(t, map[string]string{
		"bl.test":         ":127.0.0.2:Listed: $\n127.0.0.2\n" + dnsblBehindIP + "\n" + dnsblXClientIP + "\n" + dnsblProxyIP + "\n",
		"bl.test:ip6trie": reason + dnsblBehindIP6 + "\n",
	})
	s := StartServer(t, ServerOptions{
		IP: dnsblHost,
		ListenerTOML: map[string]string{"mx": fmt.Sprintf("proxy_protocol = true\nproxy_from = [%q]\nxclient_from = [%q]",
			dnsblProxyIP, dnsblXClientIP)},
		ExtraTOML: fmt.Sprintf("[outbound]\nresolver = %q\n\n[[dnsbl]]\nzone = \"bl.test\"\n", rbl.addr),
	})
	const rcpt = "user@test.example"
	s.AddUser(t, rcpt, "correct horse battery staple")
	refusal := func(ip string) string {
		return "554 5.7.1 Service unavailable; client [" + ip + "] blocked using bl.test (127.0.0.2: Listed: " + ip + ")"
	}

	t.Run("xclient", func(t *testing.T) {
		for _, tc := range []struct{ addr, ip string }{{dnsblBehindIP, dnsblBehindIP}, {"IPV6:" + dnsblBehindIP6, dnsblBehindIP6}} {
			r := runPeer(t, nil, swaks, swaksFrom(dnsblXClientIP, "--server", s.MX, "--from", "a@b.example", "--to", rcpt,
				"--helo", "client.b.example", "--timeout", "20", "--xclient", "ADDR="+tc.addr)...)
			if r.Err == nil || !strings.Contains(r.Stdout, refusal(tc.ip)) {
				t.Errorf("XCLIENT ADDR=%s: want %q:\n%s", tc.addr, refusal(tc.ip), r.Stdout)
			}
		}
		// The front end is listed itself; the unlisted client it names passes.
		mustRun(t, nil, swaks, swaksFrom(dnsblXClientIP, "--server", s.MX, "--from", "a@b.example", "--to", rcpt,
			"--helo", "client.b.example", "--timeout", "20", "--xclient", "ADDR="+dnsblUnlistedIP)...)
	})
	t.Run("proxy", func(t *testing.T) {
		for _, tc := range []struct {
			header, want string
		}{
			{"PROXY TCP4 " + dnsblBehindIP + " " + dnsblHost + " 40000 25", refusal(dnsblBehindIP)},
			{"PROXY TCP6 " + dnsblBehindIP6 + " 2001:db8::1 40000 25", refusal(dnsblBehindIP6)},
			{"PROXY TCP4 " + dnsblUnlistedIP + " " + dnsblHost + " 40000 25", "250 "},
		} {
			c := dialFromIP(t, dnsblProxyIP, s.MX)
			br := bufio.NewReader(c)
			fmt.Fprintf(c, "%s\r\n", tc.header)
			for _, step := range [][2]string{{"", "220 "}, {"EHLO client.b.example", "250 "},
				{"MAIL FROM:<a@b.example>", "250 "}, {"RCPT TO:<" + rcpt + ">", tc.want}} {
				if step[0] != "" {
					fmt.Fprintf(c, "%s\r\n", step[0])
				}
				line := replyLastLine(t, br, step[0])
				if !strings.HasPrefix(line, step[1]) {
					t.Fatalf("%s, after %q: %q, want %q", tc.header, step[0], line, step[1])
				}
			}
			fmt.Fprintf(c, "QUIT\r\n")
		}
	})
	// The PROXY header comes before the session starts: the balancer is
	// never looked up. An XCLIENT front end is a client until it sends
	// XCLIENT, so it is, but the new session judges only the client
	// XCLIENT names (above: the listed front end delivers for an
	// unlisted one).
	if n := rbl.queries(t, dnsblProxyIP, "bl.test"); n != 0 {
		t.Errorf("the load balancer %s was looked up %d times", dnsblProxyIP, n)
	}
	if n := rbl.queries(t, dnsblBehindIP6, "bl.test"); n != 1 {
		t.Errorf("%d queries for %s (%s), want 1 (cached)", n, dnsblBehindIP6, dnsbl.QueryName(netip.MustParseAddr(dnsblBehindIP6), "bl.test"))
	}
}

// replyLastLine reads one reply and returns its last line (after the step
// that was sent).
func replyLastLine(t *testing.T, br *bufio.Reader, after string) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", after, err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}
