package interop

// DMARC aggregate reports end to end (RFC 7489 §7.2): swaks hands
// smtpkit A's mx messages from sender.example (whose DMARC record asks
// for reports at a mailbox on A and one on smtpkit B, both outside
// sender.example and authorized by _report._dmarc records) and from
// noauth.example (whose rua is not authorized); [verify] records the
// evaluations, they survive a restart, and `smtpkit dmarc -send` delivers
// the gzip'd XML report to A's mailbox directly and to B through A's
// queue, DKIM-signed. Python's email, gzip and xml.etree read the reports
// (testdata/dmarc_report.py); dkimpy verifies B's copy.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/dmarcrpt"
	"smtpkit/internal/dns/dnstest"
)

// Addresses of this test (the DMARC report range, 127.14.5.0/24).
const (
	dmarcGoodIP   = "127.14.5.20" // sender.example's SPF-authorized server
	dmarcForgerIP = "127.14.5.21" // not in sender.example's SPF record
)

// dmarcMail is what dmarc_report.py read from one report mail.
type dmarcMail struct {
	Subject, From, Filename, Root, Version string
	Parts                                  []string
	OrgName                                string `json:"org_name"`
	Email                                  string
	ReportID                               string `json:"report_id"`
	Begin, End                             int64
	Policy                                 map[string]string
	Records                                []struct {
		SourceIP    string `json:"source_ip"`
		Count       int64
		Disposition string
		DKIM, SPF   string
		Reasons     []string
		HeaderFrom  string     `json:"header_from"`
		AuthSPF     [][]string `json:"auth_spf"`
	}
}

func pyReadReports(t *testing.T, msgs ...[]byte) []dmarcMail {
	t.Helper()
	dir := t.TempDir()
	args := []string{"testdata/dmarc_report.py"}
	for i, m := range msgs {
		p := filepath.Join(dir, "r"+string(rune('a'+i))+".eml")
		os.WriteFile(p, m, 0o600)
		args = append(args, p)
	}
	out, err := exec.Command(NeedPython(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dmarc_report.py: %v\n%s", err, out)
	}
	var res []dmarcMail
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m dmarcMail
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("dmarc_report.py output %q: %v", line, err)
		}
		res = append(res, m)
	}
	return res
}

func dmarcPending(t *testing.T, s *Server) []dmarcrpt.Pending {
	t.Helper()
	out := mustRun(t, nil, s.bin, "dmarc", "-json", "-config", s.ConfigPath).Stdout
	var p []dmarcrpt.Pending
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("dmarc -json: %v\n%s", err, out)
	}
	return p
}

func TestDMARCAggregateReport(t *testing.T) {
	swaks := Need(t, "swaks")
	key := dkimKeygen(t, t.TempDir(), testDomain, "rpt", "ed25519")
	dnsAddr := dnstest.NewServer(t,
		`sender.example. TXT "v=spf1 ip4:`+dmarcGoodIP+` -all"`,
		`_dmarc.sender.example. TXT "v=DMARC1; p=reject; pct=100; rua=mailto:dmarc@`+testDomain+`,mailto:agg@reports.example!10m"`,
		// RFC 7489 §7.1: both destinations are outside sender.example
		// and say they take its reports.
		`sender.example._report._dmarc.`+testDomain+`. TXT "v=DMARC1"`,
		`sender.example._report._dmarc.reports.example. TXT "v=DMARC1"`,
		`noauth.example. TXT "v=spf1 ip4:`+dmarcGoodIP+` -all"`,
		`_dmarc.noauth.example. TXT "v=DMARC1; p=none; rua=mailto:dmarc@`+testDomain+`"`,
	)
	b := StartServer(t, ServerOptions{Domains: []string{"reports.example"}})
	b.AddUser(t, "agg@reports.example", "agg pw")
	conf := outConf{resolver: dnsAddr, routes: []outRoute{{domain: "reports.example", host: b.MX}}}.toml() +
		"\n[verify]\nenabled = true\ndmarc = \"enforce\"\n" +
		"\n[[dkim]]\ndomain = \"" + testDomain + "\"\nselector = \"rpt\"\nkey = \"" + key.path + "\"\nsubdomains = true\n"
	a := StartServer(t, ServerOptions{ExtraTOML: conf})
	a.AddUser(t, "user@"+testDomain, "user pw")
	a.AddUser(t, "dmarc@"+testDomain, "dmarc pw")

	send := func(ip, from string, tag string) peerRun {
		msg := []byte("From: <" + from + ">\r\nTo: <user@" + testDomain + ">\r\nSubject: dmarc " + tag + "\r\n" +
			"Date: Wed, 02 Dec 2026 01:00:00 +0000\r\nMessage-ID: <" + tag + "@x.example>\r\n\r\nHello.\r\n")
		args := append(swaksArgs(a, a.MX, from, "user@"+testDomain), "--local-interface", ip, "--data", swaksData(t, msg))
		return runPeer(t, nil, swaks, args...)
	}
	for i := range 2 {
		if r := send(dmarcGoodIP, "s@sender.example", "good"+string(rune('0'+i))); r.Err != nil {
			t.Fatalf("aligned SPF pass refused: %v\n%s", r.Err, r.Stdout)
		}
	}
	if r := send(dmarcForgerIP, "s@sender.example", "forged"); r.Err == nil || !strings.Contains(r.Stdout, "550 5.7.1") {
		t.Fatalf("p=reject failure under enforce: want 550 5.7.1; swaks (%v):\n%s", r.Err, r.Stdout)
	}
	if r := send(dmarcGoodIP, "n@noauth.example", "noauth"); r.Err != nil {
		t.Fatalf("noauth.example: %v\n%s", r.Err, r.Stdout)
	}
	a.WaitMessages(t, "user@"+testDomain, 3)

	// Recorded, and still there after a restart (Close writes rows.json).
	pending := dmarcPending(t, a)
	a.Restart(t)
	after := dmarcPending(t, a)
	if len(pending) != 2 || pending[0].Domain != "noauth.example" || pending[1].Domain != "sender.example" ||
		pending[1].Messages() != 3 || len(pending[1].Rows) != 2 || len(after) != 2 || after[1].Messages() != 3 {
		t.Fatalf("pending before the restart %+v\nafter %+v", pending, after)
	}

	out := mustRun(t, nil, a.bin, "dmarc", "-send", "-config", a.ConfigPath).Stdout
	t.Logf("dmarc -send:\n%s", out)
	if !strings.Contains(out, "sender.example") || !strings.Contains(out, "(3 messages): sent to mailto:dmarc@"+testDomain+", mailto:agg@reports.example") ||
		!strings.Contains(out, "noauth.example") || !strings.Contains(out, "not sent: no authorized rua=mailto: destination") ||
		!strings.Contains(out, "external destination not authorized") {
		t.Errorf("dmarc -send output:\n%s", out)
	}
	if p := dmarcPending(t, a); len(p) != 0 {
		t.Errorf("pending after the send: %+v", p)
	}

	local := a.WaitMessages(t, "dmarc@"+testDomain, 1)[0]
	remote := b.WaitMessages(t, "agg@reports.example", 1)[0]
	for i, m := range pyReadReports(t, local, remote) {
		where := []string{"A's mailbox", "B (through A's queue)"}[i]
		if m.Root != "feedback" || m.OrgName != testHostname || m.Email != "noreply-dmarc@"+testHostname ||
			!strings.HasPrefix(m.Subject, "Report Domain: sender.example Submitter: "+testHostname+" Report-ID: <"+m.ReportID+">") ||
			!strings.HasPrefix(m.Filename, testHostname+"!sender.example!") || !strings.HasSuffix(m.Filename, ".xml.gz") ||
			m.Policy["domain"] != "sender.example" || m.Policy["p"] != "reject" || m.Policy["sp"] != "reject" || m.Policy["pct"] != "100" ||
			m.End <= m.Begin {
			t.Errorf("%s: report %+v", where, m)
		}
		got := map[string]string{}
		for _, r := range m.Records {
			got[r.SourceIP] = strings.Join([]string{string(rune('0' + r.Count)), r.Disposition, r.DKIM, r.SPF, r.HeaderFrom,
				strings.Join(r.AuthSPF[0], "/"), strings.Join(r.Reasons, ",")}, " ")
		}
		want := map[string]string{
			dmarcGoodIP:   "2 none fail pass sender.example sender.example/mfrom/pass ",
			dmarcForgerIP: "1 reject fail fail sender.example sender.example/mfrom/fail ",
		}
		if len(got) != 2 || got[dmarcGoodIP] != want[dmarcGoodIP] || got[dmarcForgerIP] != want[dmarcForgerIP] {
			t.Errorf("%s: records %q, want %q", where, got, want)
		}
	}
	// Signed as it was queued, with our key (d=test.example covers
	// noreply-dmarc@mx.test.example with subdomains = true).
	if v := dkimpyVerify(t, []dkimKey{key}, remote)[0].verdicts(); v != testDomain+"/rpt/ed25519-sha256:pass" {
		t.Errorf("dkimpy on the report B received: %s", v)
	}
}
