// Package dnstest runs a small DNS server on loopback for tests, so that
// code using internal/dns can be tested against real DNS messages without
// touching real DNS. Records are written in zone-file syntax:
//
//	addr := dnstest.NewServer(t,
//		"example.net. MX 10 mx1.example.net.",
//		"mx1.example.net. A 127.0.0.1",
//	)
//	res, _ := dns.New(dns.Options{Servers: []string{addr}})
//
// The server answers like a recursive resolver over UDP and TCP on the same
// port: a name with no records (and no records below it) is NXDOMAIN, a name
// with records of other types gives an empty NOERROR answer, and a CNAME is
// returned for a name that has one. Zone adds failure modes (SERVFAIL,
// truncation, silence) and the DNSSEC AD bit.
package dnstest

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
)

// Zone describes what a Server answers. Names are matched case-insensitively,
// with or without the trailing dot.
type Zone struct {
	// Records in zone-file syntax, e.g. "example.net. MX 10 mx.example.net."
	// (parsed by miekg/dns NewRR; a parse error fails the test).
	Records []string
	// ServFail lists names answered with SERVFAIL: "host.example." for every
	// type, or "host.example. AAAA" for one type only.
	ServFail []string
	// Truncate lists names whose UDP answers have the TC bit and no records,
	// so that the client must ask again over TCP, which answers in full.
	Truncate []string
	// Silent lists names never answered, for timeout tests.
	Silent []string
	// FollowCNAME makes answers include the CNAME target's records (and
	// further CNAMEs), as recursive servers do. Without it only the CNAME
	// is returned and the client has to ask for the target itself.
	FollowCNAME bool
	// Authentic sets the AD bit on answers to queries with the DO bit
	// (EDNS0) or the AD bit (RFC 6840 §5.7), except for Unsigned names.
	Authentic bool
	Unsigned  []string
	// Host is the loopback address to listen on ("" means 127.0.0.1), so
	// that a test can keep to its own 127.x.y.z range.
	Host string
	// Port is the port to listen on (0: a free one). A fixed port (53) is
	// for peers that cannot be told one, like libresolv's resolv.conf.
	Port int
}

// Query is one question the server received.
type Query struct {
	Net  string // "udp" or "tcp"
	Name string // lower case, fully qualified
	Type uint16
	DO   bool // the query carried EDNS0 with the DO bit
}

// Server is a running loopback DNS server; it stops when the test ends.
type Server struct {
	Addr string // 127.0.0.1:port, for UDP and TCP

	zone    Zone
	records map[string][]mdns.RR
	flags   map[string]map[string]bool // "servfail", "truncate", ... → names

	mu      sync.Mutex
	queries []Query
}

// NewServer starts a server answering records (zone-file lines) and returns
// its address.
func NewServer(t testing.TB, records ...string) string {
	t.Helper()
	return Start(t, Zone{Records: records}).Addr
}

// Start starts a server for z and stops it when the test ends.
func Start(t testing.TB, z Zone) *Server {
	t.Helper()
	s := &Server{zone: z, records: map[string][]mdns.RR{}, flags: map[string]map[string]bool{}}
	for _, line := range z.Records {
		rr, err := mdns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("dnstest: record %q: %v", line, err)
		}
		name := canon(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
	for kind, names := range map[string][]string{
		"servfail": z.ServFail, "truncate": z.Truncate, "silent": z.Silent, "unsigned": z.Unsigned,
	} {
		s.flags[kind] = map[string]bool{}
		for _, n := range names {
			s.flags[kind][flagKey(n)] = true
		}
	}
	pc, l := listen(t, z.Host, z.Port)
	s.Addr = pc.LocalAddr().String()
	s.serve(t, &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(s.handle)})
	s.serve(t, &mdns.Server{Listener: l, Handler: mdns.HandlerFunc(s.handle)})
	return s
}

// listen binds UDP on port (0: a free one) of host and TCP on the same port,
// retrying a few times if another process holds the TCP port.
func listen(t testing.TB, host string, port int) (net.PacketConn, net.Listener) {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	var last error
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		last = err
		pc.Close()
	}
	t.Fatalf("dnstest: no port free for both UDP and TCP: %v", last)
	return nil, nil
}

func (s *Server) serve(t testing.TB, srv *mdns.Server) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dnstest: server did not start: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
}

// Queries returns the questions received so far, in order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

func (s *Server) handle(w mdns.ResponseWriter, r *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := canon(q.Name)
	network := w.LocalAddr().Network()
	opt := r.IsEdns0()
	s.mu.Lock()
	s.queries = append(s.queries, Query{Net: network, Name: name, Type: q.Qtype, DO: opt != nil && opt.Do()})
	s.mu.Unlock()

	switch {
	case s.flags["silent"][name]:
		return
	case s.flags["servfail"][name] || s.flags["servfail"][name+" "+mdns.TypeToString[q.Qtype]]:
		m.Rcode = mdns.RcodeServerFailure
	case s.flags["truncate"][name] && network == "udp":
		m.Truncated = true
	default:
		m.Answer, m.Rcode = s.answer(name, q.Qtype)
	}
	if opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	wantAD := r.AuthenticatedData || (opt != nil && opt.Do())
	m.AuthenticatedData = s.zone.Authentic && wantAD && !s.flags["unsigned"][name] && m.Rcode != mdns.RcodeServerFailure
	_ = w.WriteMsg(m)
}

// answer returns the records for name/qtype, with the CNAME chain when the
// name is an alias, and the RCODE for the end of the chain (RFC 6604).
func (s *Server) answer(name string, qtype uint16) ([]mdns.RR, int) {
	var out []mdns.RR
	for range 16 {
		var cname *mdns.CNAME
		found := false
		for _, rr := range s.records[name] {
			switch {
			case rr.Header().Rrtype == qtype:
				out = append(out, mdns.Copy(rr))
				found = true
			case rr.Header().Rrtype == mdns.TypeCNAME:
				cname = rr.(*mdns.CNAME)
			}
		}
		if found || cname == nil {
			break
		}
		out = append(out, mdns.Copy(cname))
		if !s.zone.FollowCNAME {
			return out, mdns.RcodeSuccess
		}
		name = canon(cname.Target)
	}
	if !s.exists(name) {
		return out, mdns.RcodeNameError
	}
	return out, mdns.RcodeSuccess
}

// exists reports whether name owns records or is an ancestor of a name that
// does (an empty non-terminal, RFC 8020).
func (s *Server) exists(name string) bool {
	for owner := range s.records {
		if owner == name || strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

func canon(name string) string { return mdns.CanonicalName(name) }

// flagKey canonicalises "name" or "name TYPE" as used in Zone lists.
func flagKey(s string) string {
	f := strings.Fields(s)
	switch len(f) {
	case 0:
		return ""
	case 1:
		return canon(f[0])
	default:
		return canon(f[0]) + " " + strings.ToUpper(f[1])
	}
}
