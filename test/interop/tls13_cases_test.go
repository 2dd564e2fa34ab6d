package interop

// The outcome checks of the enforced-TLS end-to-end cases (issue #13):
// every case submits one message to the daemon under test and then waits,
// all cases at once, for what must become of it — delivered at its
// receiver exactly once, deferred in the queue with a given status (and
// nothing at the receiver), or bounced to the sender with a DSN.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

// outcome is what must become of a case's message.
type outcome int

const (
	delivered outcome = iota // at the receiver once, the queue empty of it, no bounce
	deferred                 // queued, deferred with status; nothing at the receiver
	bounced                  // a DSN with status to the sender; nothing at the receiver
)

func (o outcome) String() string { return [...]string{"delivered", "deferred", "bounced"}[o] }

// benchCase is one message of an end-to-end test.
type benchCase struct {
	name   string
	rcpt   string
	want   outcome
	status string // prefix of the recipient's status: "4.7." (deferred), "5.7.30" (bounced)
	// received counts the copies of the message (by marker) at the receiver
	// the recipient's MX records lead to.
	received func(t *testing.T, marker string) int
	msg      []byte // nil = testMessage(marker)
	// requireTLS submits the message with MAIL FROM:<...> REQUIRETLS (RFC
	// 8689 §2); a bounce of it must not return its content (§5).
	requireTLS bool
	// mech is the tls_mechanism the sender's log names for the delivery
	// attempt to mx.<domain> ("dane", "mta-sts", "default"); "" = unchecked.
	mech string
	// report is what the TLS-RPT counters of the domain must show (RFC
	// 8460 §4.3): "<policy-type>" for successful sessions only, or
	// "<policy-type> <result-type>" for failures; "" = unchecked.
	report string
}

// domain is the recipient's domain.
func (c benchCase) domain() string { return c.rcpt[strings.LastIndexByte(c.rcpt, '@')+1:] }

// marker is what identifies the case's message.
func (c benchCase) marker() string {
	return "bench13-" + strings.NewReplacer(" ", "-", "/", "-").Replace(c.name)
}

// atSmtpkit counts messages with marker in rcpt's Maildir on s.
func atSmtpkit(s *Server, rcpt string) func(*testing.T, string) int {
	return func(t *testing.T, marker string) int {
		n := 0
		for _, name := range listFiles(t, s.Maildir(rcpt)+"/new") {
			if b := readFile(t, s.Maildir(rcpt)+"/new/"+name); strings.Contains(string(b), marker) {
				n++
			}
		}
		return n
	}
}

// atPostfix counts messages with marker in rcpt's Maildir at Postfix p.
func atPostfix(p *relayPostfix, rcpt string) func(*testing.T, string) int {
	return func(t *testing.T, marker string) int { return len(p.delivered(t, rcpt, marker)) }
}

// runCases submits every case's message to a and checks the outcomes. The
// waits overlap: every message is submitted first, and deliveries and
// deferrals happen concurrently in the daemon. The waits read the
// sender's log and the receivers' mailboxes; the queue and the TLS-RPT
// counters are read once at the end (each is a run of the binary, slow
// under -race).
func runCases(t *testing.T, a *Server, cases []benchCase) {
	t.Helper()
	for _, c := range cases {
		msg := c.msg
		if msg == nil {
			msg = testMessage(c.marker())
		}
		outSubmitEnvelope(t, a, client.Envelope{From: outSender, To: []string{c.rcpt}, RequireTLS: c.requireTLS}, msg)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { waitCase(t, a, c) })
	}
	queue := map[string]*queueRecipient{}
	for _, m := range relayQueueList(t, a) {
		for _, r := range m.Recipients {
			queue[r.Addr] = &queueRecipient{r.Addr, r.State, r.Status, r.LastReply, r.Attempts}
		}
	}
	var reports map[string]map[string]tlsrptPolicy
	for _, c := range cases {
		if c.report != "" && reports == nil {
			reports = tlsrptCounts(t, a)
		}
	}
	for _, c := range cases {
		t.Run(c.name+"/queue and report", func(t *testing.T) {
			r := queue[c.rcpt]
			switch {
			case c.want == deferred && (r == nil || r.State != "deferred" || !strings.HasPrefix(r.Status, c.status)):
				t.Errorf("queue entry %+v, want deferred with %s", r, c.status)
			case c.want != deferred && r != nil:
				t.Errorf("still queued: %+v", *r)
			}
			if c.report != "" {
				checkReport(t, reports[c.domain()], c.domain(), c.report)
			}
		})
	}
}

// waitCase waits for c's outcome and checks that nothing else happened.
func waitCase(t *testing.T, a *Server, c benchCase) {
	t.Helper()
	switch c.want {
	case delivered:
		eventually(t, "the message at the receiver", func() bool { return c.received(t, c.marker()) >= 1 })
		eventually(t, "the delivery logged", func() bool { return loggedDelivered(a, c.rcpt) })
		if bounce := findBounce(t, a, c.rcpt); bounce != "" {
			t.Errorf("a bounce for a delivered message:\n%s", bounce)
		}
	case deferred:
		var got string
		eventually(t, "the recipient deferred with "+c.status, func() bool {
			got = loggedDeferral(a, c.rcpt)
			return strings.HasPrefix(got, c.status)
		})
		if bounce := findBounce(t, a, c.rcpt); bounce != "" {
			t.Errorf("a bounce for a deferred message:\n%s", bounce)
		}
	case bounced:
		var dsn string
		eventually(t, "a bounce", func() bool { dsn = findBounce(t, a, c.rcpt); return dsn != "" })
		checkBounce(t, []byte(dsn), c.rcpt, c.status)
		if leak := "Hello from " + c.marker(); c.requireTLS && strings.Contains(dsn, leak) {
			t.Errorf("the bounce of a REQUIRETLS message returns its body (RFC 8689 §5):\n%s", dsn)
		}
	}
	if n, want := c.received(t, c.marker()), map[outcome]int{delivered: 1}[c.want]; n != want {
		t.Errorf("%d copies at the receiver, want %d", n, want)
	}
	if c.mech != "" {
		checkMechanism(t, a, "mx."+c.domain(), c.mech)
	}
}

// outSubmitEnvelope is outSubmit with a whole envelope: STARTTLS
// (verified), AUTH PLAIN as outSender, then env and msg; every recipient
// must be accepted.
func outSubmitEnvelope(t *testing.T, s *Server, env client.Envelope, msg []byte) {
	t.Helper()
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, s.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("submitting %+v: %v / %v (rcpts %v)", env, err, res.Data, res.Rcpt)
	}
	c.Quit()
}

// loggedDelivered reports whether a logged the delivery to rcpt.
func loggedDelivered(a *Server, rcpt string) bool {
	for _, line := range strings.Split(a.Logs(), "\n") {
		if strings.Contains(line, "msg=delivered ") && strings.Contains(line, " rcpt="+rcpt+" ") {
			return true
		}
	}
	return false
}

// deferralStatus finds the enhanced status code (RFC 3463) after a 4xx
// reply code in a deferral's detail.
var deferralStatus = regexp.MustCompile(`\b4[0-9][0-9] (4\.[0-9]{1,3}\.[0-9]{1,3})\b`)

// loggedDeferral returns the status of the last deferral of rcpt that a
// logged, "" if none.
func loggedDeferral(a *Server, rcpt string) string {
	status := ""
	for _, line := range strings.Split(a.Logs(), "\n") {
		if strings.Contains(line, "msg=\"delivery deferred\"") && strings.Contains(line, " rcpt="+rcpt+" ") {
			if m := deferralStatus.FindStringSubmatch(line); m != nil {
				status = m[1]
			}
		}
	}
	return status
}

// checkMechanism checks that the sender logged its delivery attempt to
// host with tls_mechanism=mech (issue #13: the log names what applied).
func checkMechanism(t *testing.T, a *Server, host, mech string) {
	t.Helper()
	var seen []string
	for _, line := range strings.Split(a.Logs(), "\n") {
		if !strings.Contains(line, "msg=\"delivery attempt\"") || !strings.Contains(line, " host="+host+" ") {
			continue
		}
		if strings.Contains(line, " tls_mechanism="+mech+" ") {
			return
		}
		seen = append(seen, line)
	}
	t.Errorf("no delivery attempt to %s logged with tls_mechanism=%s; attempts:\n%s", host, mech, strings.Join(seen, "\n"))
}

// checkReport checks the daemon's TLS-RPT counters for domain against
// want ("sts", "tlsa certificate-expired", ...). Failures are counted per
// attempt, so a deferred message may have been counted several times.
func checkReport(t *testing.T, got map[string]tlsrptPolicy, domain, want string) {
	t.Helper()
	typ, result, _ := strings.Cut(want, " ")
	p, ok := got[typ]
	switch {
	case !ok:
		t.Errorf("TLS-RPT for %s: no %s policy counted; got %+v", domain, typ, got)
	case result == "" && (p.Summary.Successful < 1 || p.Summary.Failed != 0):
		t.Errorf("TLS-RPT for %s: %+v, want successful sessions only", domain, p)
	case result != "":
		n := 0
		for _, f := range p.Failures {
			if f.ResultType == result {
				n += f.Count
			} else {
				t.Errorf("TLS-RPT for %s: a %s failure, want only %s: %+v", domain, f.ResultType, result, p)
			}
		}
		if n < 1 || p.Summary.Successful != 0 || p.Summary.Failed != n {
			t.Errorf("TLS-RPT for %s: %+v, want %s failures only", domain, p, result)
		}
	}
}

// queueRecipient is one recipient of `smtpkit queue list -json`.
type queueRecipient struct {
	Addr, State, Status, LastReply string
	Attempts                       int
}

// findBounce returns the DSN in the sender's Maildir about rcpt, or "".
func findBounce(t *testing.T, a *Server, rcpt string) string {
	t.Helper()
	dir := a.Maildir(outSender) + "/new"
	for _, name := range listFiles(t, dir) {
		if b := string(readFile(t, dir+"/"+name)); strings.Contains(b, "Final-Recipient: rfc822; "+rcpt) {
			return b
		}
	}
	return ""
}

// plainPeer is a scripted SMTP server on ip:25 that offers no STARTTLS,
// accepts everything and records the commands it was sent: the stand-in
// for an attacker who strips STARTTLS, to show that nothing goes to it in
// cleartext when TLS is enforced.
type plainPeer struct {
	addr string
	mu   sync.Mutex
	cmds []string
	msgs []string
}

// startPlainPeer listens on ip:25 until the test ends.
func startPlainPeer(t *testing.T, ip string) *plainPeer {
	t.Helper()
	p := &plainPeer{addr: net.JoinHostPort(ip, "25")}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.session(nc) }()
		}
	}()
	return p
}

func (p *plainPeer) session(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(outWait))
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	say("220 plain.example ESMTP no STARTTLS here")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		p.mu.Lock()
		p.cmds = append(p.cmds, verb)
		p.mu.Unlock()
		switch verb {
		case "EHLO", "HELO":
			say("250-plain.example")
			say("250 8BITMIME")
		case "QUIT":
			say("221 bye")
			return
		case "DATA":
			say("354 go ahead")
			var body strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, body.String())
			p.mu.Unlock()
			say("250 accepted")
		case "STARTTLS":
			say("502 not offered")
		default:
			say("250 ok")
		}
	}
}

// commands returns the verbs the peer was sent, in order.
func (p *plainPeer) commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.cmds...)
}

// received counts the messages with marker the peer took.
func (p *plainPeer) received(_ *testing.T, marker string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.msgs {
		if strings.Contains(m, marker) {
			n++
		}
	}
	return n
}

// tlsrptPolicy is one policy of `smtpkit tlsrpt -json` (RFC 8460 §4.4
// names, as the report carries them).
type tlsrptPolicy struct {
	Policy struct {
		Type   string   `json:"policy-type"`
		String []string `json:"policy-string"`
		Domain string   `json:"policy-domain"`
	} `json:"policy"`
	Summary struct {
		Successful int `json:"total-successful-session-count"`
		Failed     int `json:"total-failure-session-count"`
	} `json:"summary"`
	Failures []struct {
		ResultType string `json:"result-type"`
		MXHost     string `json:"receiving-mx-hostname"`
		Count      int    `json:"failed-session-count"`
	} `json:"failure-details"`
}

// tlsrptCounts returns the daemon's pending TLS-RPT counters (`smtpkit
// tlsrpt -json` through the control socket) by domain and policy type.
func tlsrptCounts(t *testing.T, a *Server) map[string]map[string]tlsrptPolicy {
	t.Helper()
	r := runPeer(t, nil, a.bin, "tlsrpt", "-json", "-config", a.ConfigPath)
	if r.Err != nil {
		t.Fatalf("smtpkit tlsrpt -json: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	var pending []struct {
		Domain   string         `json:"domain"`
		Policies []tlsrptPolicy `json:"policies"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &pending); err != nil {
		t.Fatalf("smtpkit tlsrpt -json: %v\n%s", err, r.Stdout)
	}
	out := map[string]map[string]tlsrptPolicy{}
	for _, p := range pending {
		if out[p.Domain] == nil {
			out[p.Domain] = map[string]tlsrptPolicy{}
		}
		for _, pol := range p.Policies { // a test that spans midnight UTC has two days
			if prev, ok := out[p.Domain][pol.Policy.Type]; ok {
				pol.Summary.Successful += prev.Summary.Successful
				pol.Summary.Failed += prev.Summary.Failed
				pol.Failures = append(pol.Failures, prev.Failures...)
			}
			out[p.Domain][pol.Policy.Type] = pol
		}
	}
	return out
}
