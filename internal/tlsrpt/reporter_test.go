package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
)

// fakeDNS answers TXT and address lookups from maps; a name in neither
// is a temporary failure.
type fakeDNS struct {
	txt map[string][]string
	ip  map[string]netip.Addr
}

func (f fakeDNS) LookupTXT(_ context.Context, name string) (dns.TXTAnswer, error) {
	if recs, ok := f.txt[name]; ok {
		return dns.TXTAnswer{Records: recs, NXDomain: len(recs) == 0}, nil
	}
	return dns.TXTAnswer{}, fmt.Errorf("%w: servfail", dns.ErrTemporary)
}

func (f fakeDNS) LookupIP(_ context.Context, host string) (dns.IPAnswer, error) {
	if ip, ok := f.ip[host]; ok {
		return dns.IPAnswer{IPs: []netip.Addr{ip}}, nil
	}
	return dns.IPAnswer{NXDomain: true}, nil
}

// mailbox collects what the reporter hands to the queue.
type mailbox struct {
	mu   sync.Mutex
	from []string
	to   [][]string
	msgs [][]byte
	fail error
}

func (m *mailbox) send(_ context.Context, from string, to []string, msg []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.from, m.to, m.msgs = append(m.from, from), append(m.to, to), append(m.msgs, msg)
	return nil
}

func newReporter(t *testing.T, res Resolver, mb *mailbox, c *clock, edit func(*ReporterOptions)) (*Reporter, *Store) {
	s := newTestStore(t, t.TempDir(), c)
	opts := ReporterOptions{Store: s, Resolver: res, Mail: mb.send, From: "noreply-tlsrpt@mx.us.example",
		Submitter: "mx.us.example", Now: c.Now, Timeout: 10 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	return NewReporter(opts), s
}

// reportOfMail checks a report mail's header fields and structure (RFC
// 8460 §5.3) and returns its gunzip'd, parsed JSON.
func reportOfMail(t *testing.T, raw []byte, domain string) Report {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("bare LF or CR in the report mail")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	for name, want := range map[string]string{
		"TLS-Report-Domain": domain, "TLS-Report-Submitter": "mx.us.example", "TLS-Required": "No",
		"From": "<noreply-tlsrpt@mx.us.example>", "Auto-Submitted": "auto-generated",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(h.Get("Subject"), "Report Domain: "+domain+" Submitter: mx.us.example Report-ID: <") {
		t.Errorf("Subject: %q", h.Get("Subject"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q (%v)", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	first, err := mr.NextPart()
	if err != nil || !strings.HasPrefix(first.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("first part: %v %v", err, first.Header)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct := att.Header.Get("Content-Type"); ct != "application/tlsrpt+gzip" {
		t.Errorf("attachment Content-Type %q", ct)
	}
	_, dp, _ := mime.ParseMediaType(att.Header.Get("Content-Disposition"))
	parts := strings.Split(strings.TrimSuffix(dp["filename"], ".json.gz"), "!")
	if len(parts) != 5 || parts[0] != "mx.us.example" || parts[1] != domain || !strings.HasSuffix(dp["filename"], ".json.gz") {
		t.Errorf("filename %q (RFC 8460 §5.1)", dp["filename"])
	}
	gz, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, att))
	if err != nil {
		t.Fatal(err)
	}
	return gunzipReport(t, gz)
}

func gunzipReport(t *testing.T, gz []byte) Report {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReport(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return r
}

func TestSendByMail(t *testing.T) {
	c := &clock{t: day1.Add(5 * time.Hour)}
	res := fakeDNS{txt: map[string][]string{
		"_smtp._tls.a.example": {"v=TLSRPTv1; rua=mailto:tlsrpt@a.example%2Ccopy@b.example"},
		"_smtp._tls.b.example": {},
	}}
	mb := &mailbox{}
	r, s := newReporter(t, res, mb, c, nil)
	s.Record(Session{Domain: "a.example", Policy: PolicySTS, Strings: stsLines, MXHost: "mx.a.example"})
	s.Record(Session{Domain: "a.example", Policy: PolicySTS, Strings: stsLines, MXHost: "mx.a.example", Result: CertificateExpired})
	s.Record(Session{Domain: "b.example"})
	c.Set(day1.Add(day + time.Minute))

	sent := r.Send(context.Background(), false)
	if len(sent) != 2 || sent[0].Domain != "a.example" || sent[0].Successful != 1 || sent[0].Failed != 1 || sent[1].Skipped == "" {
		t.Fatalf("sent: %s", js(sent))
	}
	if len(mb.msgs) != 1 || mb.from[0] != "noreply-tlsrpt@mx.us.example" || strings.Join(mb.to[0], " ") != "tlsrpt@a.example copy@b.example" {
		t.Fatalf("mails: from %q to %q", mb.from, mb.to)
	}
	rep := reportOfMail(t, mb.msgs[0], "a.example")
	p := rep.Policies[0]
	if rep.ReportID != sent[0].ReportID || rep.OrganizationName != "mx.us.example" || rep.ContactInfo != "noreply-tlsrpt@mx.us.example" ||
		!rep.DateRange.Start.Equal(day1) || !rep.DateRange.End.Equal(day1.Add(day-time.Second)) ||
		p.Policy.Type != PolicySTS || p.Summary != (Summary{1, 1}) || p.FailureDetails[0].ResultType != CertificateExpired {
		t.Errorf("report: %s", js(rep))
	}
	if left := s.Snapshot(); len(left) != 0 {
		t.Errorf("counts left after sending (b.example has no record: dropped): %s", js(left))
	}
}

// httpsRUA runs an HTTPS report receiver on 127.13.3.x for the name
// reports.a.example; handler answers it.
func httpsRUA(t *testing.T, ip string, handler http.HandlerFunc) (url string, srv *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}}
	srv.TLS = testcert.ServerConfig(testcert.New(t, "reports.a.example"))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return fmt.Sprintf("https://reports.a.example:%d/v1/tlsrpt", ln.Addr().(*net.TCPAddr).Port), srv
}

func TestSendByHTTPS(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var types []string
	url, srv := httpsRUA(t, "127.13.3.1", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		bodies, types = append(bodies, body), append(types, req.Method+" "+req.Header.Get("Content-Type"))
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	roots := testcert.Pool(srv.TLS.Certificates[0])
	c := &clock{t: day1.Add(5 * time.Hour)}
	res := fakeDNS{
		txt: map[string][]string{"_smtp._tls.a.example": {"v=TLSRPTv1; rua=" + url}},
		ip:  map[string]netip.Addr{"reports.a.example": netip.MustParseAddr("127.13.3.1")},
	}
	r, s := newReporter(t, res, &mailbox{}, c, func(o *ReporterOptions) { o.Roots, o.AllowLoopback = roots, true })
	for range 3 {
		s.Record(Session{Domain: "a.example", Policy: PolicyTLSA, Strings: tlsaRecs, MXHost: "mx.a.example"})
	}
	sent := r.Send(context.Background(), true) // today, until now
	if len(sent) != 1 || len(sent[0].To) != 1 || len(sent[0].Errors) != 0 {
		t.Fatalf("sent: %s", js(sent))
	}
	if len(bodies) != 1 || types[0] != "POST application/tlsrpt+gzip" {
		t.Fatalf("%d POSTs, %q", len(bodies), types)
	}
	rep := gunzipReport(t, bodies[0])
	if p := rep.Policies[0]; p.Summary.Successful != 3 || p.Policy.Type != PolicyTLSA || p.Policy.MXHost[0] != "mx.a.example" {
		t.Errorf("report: %s", js(rep))
	}
}

// A destination that fails keeps the counts for the next Send; one that
// is not even looked up (DNS down) too.
func TestSendFailuresKeepCounts(t *testing.T) {
	redirect, rs := httpsRUA(t, "127.13.3.2", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "https://elsewhere.example/", http.StatusFound)
	})
	untrusted, _ := httpsRUA(t, "127.13.3.3", func(w http.ResponseWriter, req *http.Request) {})
	refused, fs := httpsRUA(t, "127.13.3.4", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	roots := testcert.Pool(rs.TLS.Certificates[0]) // not the untrusted one's
	roots.AddCert(fs.TLS.Certificates[0].Leaf)
	tests := []struct {
		name, record, ip string
		loopback         bool
		mailFail         error
		want             string // in the errors
	}{
		{name: "redirect not followed", record: "v=TLSRPTv1; rua=" + redirect, ip: "127.13.3.2", loopback: true, want: "redirect"},
		{name: "certificate not trusted", record: "v=TLSRPTv1; rua=" + untrusted, ip: "127.13.3.3", loopback: true, want: "certificate"},
		{name: "503", record: "v=TLSRPTv1; rua=" + refused, ip: "127.13.3.4", loopback: true, want: "503"},
		{name: "loopback refused", record: "v=TLSRPTv1; rua=" + refused, ip: "127.13.3.4", want: "loopback"},
		{name: "queue refuses", record: "v=TLSRPTv1; rua=mailto:r@a.example", mailFail: errors.New("queue full"), want: "queue full"},
		{name: "dns down", want: "temporary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := fakeDNS{txt: map[string][]string{}, ip: map[string]netip.Addr{}}
			if tt.record != "" {
				res.txt["_smtp._tls.a.example"] = []string{tt.record}
			}
			if tt.ip != "" {
				res.ip["reports.a.example"] = netip.MustParseAddr(tt.ip)
			}
			c := &clock{t: day1.Add(5 * time.Hour)}
			r, s := newReporter(t, res, &mailbox{fail: tt.mailFail}, c, func(o *ReporterOptions) { o.Roots, o.AllowLoopback = roots, tt.loopback })
			s.Record(Session{Domain: "a.example", Result: StartTLSNotSupported})
			before := s.Snapshot()
			sent := r.Send(context.Background(), true)
			if len(sent) != 1 || !sent[0].Kept || len(sent[0].Errors) == 0 || !strings.Contains(strings.Join(sent[0].Errors, "; "), tt.want) {
				t.Fatalf("sent: %s", js(sent))
			}
			after := s.Snapshot()
			if len(after) != 1 || js(after[0].Policies) != js(before[0].Policies) || !after[0].Start.Equal(before[0].Start) {
				t.Errorf("counts not kept:\n got %s\nwant %s", js(after), js(before))
			}
		})
	}
}

func TestNextRun(t *testing.T) {
	tests := []struct {
		now      time.Time
		interval time.Duration
		want     time.Time
	}{
		{day1.Add(5 * time.Hour), day, day1.Add(day)},
		{day1, day, day1.Add(day)}, // at midnight: the next one
		{day1.Add(day - time.Nanosecond), day, day1.Add(day)},
		{day1.Add(5*time.Hour + 7*time.Minute), 6 * time.Hour, day1.Add(6 * time.Hour)},
		{day1.Add(23 * time.Hour), 6 * time.Hour, day1.Add(day)},
		{day1.Add(90 * time.Second), time.Minute, day1.Add(2 * time.Minute)},
		{day1.Add(5 * time.Hour).In(time.FixedZone("UTC+9", 9*3600)), day, day1.Add(day)}, // zones do not matter
	}
	for _, tt := range tests {
		if got := nextRun(tt.now, tt.interval); !got.Equal(tt.want) {
			t.Errorf("nextRun(%v, %v) = %v, want %v", tt.now, tt.interval, got, tt.want)
		}
	}
}
