package interop

// TLS-RPT end to end (RFC 8460): smtpkit A delivers to smtpkit B found
// through a loopback DNS server; B's domain publishes an _smtp._tls record
// with a mailto: rua (a mailbox on B) and an https: rua (a receiver on
// 127.13.3.10); A's counters survive a restart; `smtpkit tlsrpt -send`
// sends the report both ways, and the test gunzips both copies and checks
// the counts against what `smtpkit tlsrpt -json` showed pending.

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
)

func TestTLSRPTReport(t *testing.T) {
	// The https rua: a receiver with a certificate A trusts through
	// outbound.ca_file.
	cert := testcert.New(t, "reports.remote.example")
	caFile, _ := testcert.WriteFiles(t, cert, t.TempDir())
	posts := make(chan []byte, 4)
	var postMu sync.Mutex
	var postTypes []string
	ln, err := net.Listen("tcp", "127.13.3.10:0")
	if err != nil {
		t.Fatal(err)
	}
	rua := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		postMu.Lock()
		postTypes = append(postTypes, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		postMu.Unlock()
		posts <- body
	})}}
	rua.TLS = testcert.ServerConfig(cert)
	rua.StartTLS()
	defer rua.Close()
	ruaURL := fmt.Sprintf("https://reports.remote.example:%d/v1/tlsrpt", ln.Addr().(*net.TCPAddr).Port)

	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}})
	b.AddUser(t, "bob@remote.example", "bob pw")
	b.AddUser(t, "tlsrpt@remote.example", "rpt pw")
	_, mxPort, _ := net.SplitHostPort(b.MX)
	dnsAddr := dnstest.NewServer(t,
		"remote.example. MX 10 mx.remote.example.",
		"mx.remote.example. A 127.0.0.1",
		"reports.remote.example. A 127.13.3.10",
		// Two addresses in one mailto: (the comma as %2C, RFC 8460 §3):
		// B's mailbox, through A's queue, and one in A's own domain,
		// which A delivers to its mailbox directly.
		fmt.Sprintf(`_smtp._tls.remote.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@remote.example%%2C%s,%s"`, outSender, ruaURL),
	)
	var port int
	fmt.Sscan(mxPort, &port)
	a := startSender(t, outConf{resolver: dnsAddr, port: port, tls: "opportunistic", caFile: caFile})

	for i := range 2 {
		outSubmit(t, a, testMessage(fmt.Sprint("tlsrpt-", i)), "bob@remote.example")
	}
	b.WaitMessages(t, "bob@remote.example", 2)

	// Delivery counted the sessions; they are pending on A, and still
	// after a restart (Close writes counters.json, serve reads it).
	var pending []tlsrpt.Pending
	eventually(t, "A to count its sessions to remote.example", func() bool {
		pending = tlsrptPending(t, a)
		return len(pending) == 1 && pending[0].Domain == "remote.example"
	})
	a.Restart(t)
	if after := tlsrptPending(t, a); len(after) != 1 || tlsrptJSON(after[0].Policies) != tlsrptJSON(pending[0].Policies) {
		t.Fatalf("counters after a restart:\n got %s\nwant %s", tlsrptJSON(after), tlsrptJSON(pending))
	}
	wantOK, wantFailed := pending[0].Totals()
	t.Logf("pending before the send: %d successful, %d failed sessions", wantOK, wantFailed)
	if wantOK < 1 || wantFailed != 0 {
		t.Fatalf("pending %d ok, %d failed; want ≥1 ok and no failure (opportunistic TLS to B): %s", wantOK, wantFailed, tlsrptJSON(pending))
	}

	out := mustRun(t, nil, a.bin, "tlsrpt", "-send", "-config", a.ConfigPath).Stdout
	if !strings.Contains(out, "sent to mailto:tlsrpt@remote.example, mailto:"+outSender+", "+ruaURL) {
		t.Fatalf("tlsrpt -send:\n%s", out)
	}

	// The https copy.
	check := func(how string, rep tlsrpt.Report) {
		t.Helper()
		if len(rep.Policies) != 1 {
			t.Fatalf("%s: report policies: %s", how, tlsrptJSON(rep))
		}
		p := rep.Policies[0]
		if p.Policy.Domain != "remote.example" || p.Summary.Successful != wantOK || p.Summary.Failed != wantFailed ||
			rep.OrganizationName != testHostname || !strings.HasSuffix(rep.ReportID, "@"+testHostname) {
			t.Errorf("%s: report %s, want %d ok, %d failed", how, tlsrptJSON(rep), wantOK, wantFailed)
		}
	}
	select {
	case body := <-posts:
		check("https", gunzipReport(t, body))
	case <-time.After(outWait):
		t.Fatal("no POST to the https rua")
	}
	postMu.Lock()
	if postTypes[0] != "POST /v1/tlsrpt application/tlsrpt+gzip" {
		t.Errorf("POST: %q", postTypes[0])
	}
	postMu.Unlock()

	// The mail copies: queued on A and delivered to B, and in A's own
	// mailbox.
	check("mailto (B)", reportOfMail(t, b.WaitMessages(t, "tlsrpt@remote.example", 1)[0]))
	check("mailto (A's own mailbox)", reportOfMail(t, a.WaitMessages(t, outSender, 1)[0]))
}

// reportOfMail checks a report mail (RFC 8460 §5.3) as it arrived in a
// Maildir and returns its gunzipped report.
func reportOfMail(t *testing.T, raw []byte) tlsrpt.Report {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("TLS-Report-Domain"); got != "remote.example" {
		t.Errorf("TLS-Report-Domain %q", got)
	}
	if got := msg.Header.Get("TLS-Report-Submitter"); got != testHostname {
		t.Errorf("TLS-Report-Submitter %q", got)
	}
	if rp := msg.Header.Get("Return-Path"); rp != "<noreply-tlsrpt@"+testHostname+">" {
		t.Errorf("Return-Path %q, want [tlsrpt] from's default", rp)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var gz []byte
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if part.Header.Get("Content-Type") == "application/tlsrpt+gzip" {
			gz, _ = io.ReadAll(base64.NewDecoder(base64.StdEncoding, part))
			_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if !strings.HasPrefix(dp["filename"], testHostname+"!remote.example!") || !strings.HasSuffix(dp["filename"], ".json.gz") {
				t.Errorf("attachment file name %q (RFC 8460 §5.1)", dp["filename"])
			}
		}
	}
	if gz == nil {
		t.Fatalf("no application/tlsrpt+gzip part:\n%s", raw)
	}
	return gunzipReport(t, gz)
}

// tlsrptPending is `smtpkit tlsrpt -json` of s.
func tlsrptPending(t *testing.T, s *Server) []tlsrpt.Pending {
	t.Helper()
	out := mustRun(t, nil, s.bin, "tlsrpt", "-json", "-config", s.ConfigPath).Stdout
	var p []tlsrpt.Pending
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("tlsrpt -json: %v\n%s", err, out)
	}
	return p
}

func gunzipReport(t *testing.T, gz []byte) tlsrpt.Report {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tlsrpt.ParseReport(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return rep
}

func tlsrptJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestTLSRPTSTSTesting: the issue's "STS testing → delivered and
// reported". remote.example publishes an MTA-STS policy in mode testing
// (served over HTTPS on 127.13.3.20:443 with a certificate from a CA the
// daemon trusts through SSL_CERT_FILE); its MX, smtpkit B, presents its
// self-signed development certificate, which is not valid for
// mx.remote.example. A delivers anyway (testing), counts the session as a
// failure under the sts policy, and the report B receives says so, with
// the policy's lines.
func TestTLSRPTSTSTesting(t *testing.T) {
	policyCert := testcert.New(t, "mta-sts.remote.example")
	caFile, _ := testcert.WriteFiles(t, policyCert, t.TempDir())
	t.Setenv("SSL_CERT_FILE", caFile) // the daemons' system roots: only this CA
	policy := "version: STSv1\r\nmode: testing\r\nmx: mx.remote.example\r\nmax_age: 86400\r\n"
	ln := listenWaiting(t, "127.13.3.20:443")
	sts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, policy)
	})}}
	sts.TLS = testcert.ServerConfig(policyCert)
	sts.StartTLS()
	defer sts.Close()

	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}})
	b.AddUser(t, "bob@remote.example", "bob pw")
	b.AddUser(t, "tlsrpt@remote.example", "rpt pw")
	_, mxPort, _ := net.SplitHostPort(b.MX)
	dnsAddr := dnstest.NewServer(t,
		"remote.example. MX 10 mx.remote.example.",
		"mx.remote.example. A 127.0.0.1",
		"mta-sts.remote.example. A 127.13.3.20",
		`_mta-sts.remote.example. TXT "v=STSv1; id=20261202"`,
		`_smtp._tls.remote.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@remote.example"`,
	)
	var port int
	fmt.Sscan(mxPort, &port)
	a := startSender(t, outConf{resolver: dnsAddr, port: port, tls: "opportunistic"})

	outSubmit(t, a, testMessage("tlsrpt-sts-testing"), "bob@remote.example")
	b.WaitMessages(t, "bob@remote.example", 1) // testing: delivered all the same

	var pending []tlsrpt.Pending
	eventually(t, "A to count the session under the sts policy", func() bool {
		pending = tlsrptPending(t, a)
		return len(pending) == 1 && len(pending[0].Policies) > 0
	})
	mustRun(t, nil, a.bin, "tlsrpt", "-send", "-config", a.ConfigPath)
	rep := reportOfMail(t, b.WaitMessages(t, "tlsrpt@remote.example", 1)[0])
	t.Logf("report: %s", tlsrptJSON(rep))
	if len(rep.Policies) != 1 {
		t.Fatalf("want one policy: %s", tlsrptJSON(rep))
	}
	p := rep.Policies[0]
	if p.Policy.Type != tlsrpt.PolicySTS || p.Policy.Domain != "remote.example" ||
		strings.Join(p.Policy.String, "|") != "version: STSv1|mode: testing|mx: mx.remote.example|max_age: 86400" ||
		strings.Join(p.Policy.MXHost, " ") != "mx.remote.example" {
		t.Errorf("policy: %s", tlsrptJSON(p.Policy))
	}
	if p.Summary.Failed < 1 || p.Summary.Successful != 0 || len(p.FailureDetails) != 1 {
		t.Fatalf("summary %+v, details %s: want the session counted as a failure", p.Summary, tlsrptJSON(p.FailureDetails))
	}
	d := p.FailureDetails[0]
	// The name is checked before the chain (Go's x509 verifier), so the
	// self-signed certificate for mx.test.example is a host mismatch.
	if d.ResultType != tlsrpt.CertificateHostMismatch ||
		d.ReceivingMXHostname != "mx.remote.example" || d.ReceivingIP != "127.0.0.1" || d.FailedSessionCount != p.Summary.Failed {
		t.Errorf("failure detail: %s", tlsrptJSON(d))
	}
}

// listenWaiting listens on a fixed address (MTA-STS policies are fetched
// from port 443), waiting up to two minutes while another run of this
// test (a full suite and a -run from another checkout) holds it.
func listenWaiting(t *testing.T, addr string) net.Listener {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // polling for an address another process holds, bounded above
	}
}
