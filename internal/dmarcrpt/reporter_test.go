package dmarcrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
)

// mailbox collects what the reporter hands to the queue.
type mailbox struct {
	mu   sync.Mutex
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
	m.to, m.msgs = append(m.to, to), append(m.msgs, msg)
	return nil
}

// ReportOfMail checks a report mail's header and structure (RFC 7489
// §7.2.1.1) and returns its gunzip'd, parsed XML.
func reportOfMail(t *testing.T, raw []byte, domain string) Feedback {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("report mail has a bare LF")
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj := m.Header.Get("Subject")
	if !regexp.MustCompile(`^Report Domain: ` + regexp.QuoteMeta(domain) + ` Submitter: mx\.example\.net Report-ID: <[^>]+>$`).MatchString(subj) {
		t.Errorf("Subject %q", subj)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no application/gzip part: %v", err)
		}
		if p.Header.Get("Content-Type") != "application/gzip" {
			continue
		}
		name := p.FileName()
		if !regexp.MustCompile(`^mx\.example\.net!` + regexp.QuoteMeta(domain) + `![0-9]+![0-9]+![0-9a-f]+\.xml\.gz$`).MatchString(name) {
			t.Errorf("file name %q", name)
		}
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var f Feedback
		if err := xml.Unmarshal(data, &f); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		return f
	}
}

func TestReporterSend(t *testing.T) {
	res := testResolver(t, dnstest.Zone{
		Records:  []string{`example.com._report._dmarc.reports.example.net. TXT "v=DMARC1"`},
		ServFail: []string{"flaky.example._report._dmarc.reports.example.net."},
	})
	c := &clock{t: day1.Add(3 * time.Hour)}
	s := newTestStore(t, t.TempDir(), c)
	mb := &mailbox{}
	r := NewReporter(ReporterOptions{Store: s, Resolver: res, Mail: mb.send, From: "noreply-dmarc@mx.example.net", Org: "mx.example.net", Now: c.Now})

	rec := "v=DMARC1; p=quarantine; pct=50; adkim=s; rua=mailto:dmarc@example.com,mailto:agg@reports.example.net!10m,mailto:nobody@unauthorized.example, https://x.example/"
	for range 3 {
		s.Add(Message{PolicyDomain: "example.com", Record: rec, Row: msg("example.com", ip1, "pass", "pass", "none").Row})
	}
	s.Add(Message{PolicyDomain: "example.com", Record: rec, Row: Row{SourceIP: ip2, HeaderFrom: "example.com", Disposition: "none", DKIM: "fail", SPF: "fail", Reason: "sampled_out",
		SPFResult: SPFResult{Domain: "forged.example", Scope: "mfrom", Result: "softfail"}}})
	s.Add(Message{PolicyDomain: "flaky.example", Record: "v=DMARC1; p=none; rua=mailto:d@reports.example.net", Row: msg("flaky.example", ip1, "pass", "pass", "none").Row})
	s.Add(Message{PolicyDomain: "tiny.example", Record: "v=DMARC1; p=none; rua=mailto:d@tiny.example!1k", Row: msg("tiny.example", ip1, "pass", "pass", "none").Row})

	sent := r.Send(context.Background(), true)
	if len(sent) != 3 {
		t.Fatalf("sent %+v", sent)
	}
	ex, flaky, tiny := sent[0], sent[1], sent[2]
	if strings.Join(ex.To, " ") != "mailto:dmarc@example.com mailto:agg@reports.example.net" || ex.Messages != 4 || ex.Rows != 2 || ex.Kept || len(ex.Errors) != 1 {
		t.Errorf("example.com: %+v", ex)
	}
	if !flaky.Kept || len(flaky.To) != 0 {
		t.Errorf("flaky.example (servfail on the §7.1 check): %+v, want kept", flaky)
	}
	if tiny.Skipped == "" || len(tiny.To) != 0 || tiny.Kept {
		t.Errorf("tiny.example (!1k limit): %+v, want skipped", tiny)
	}
	if len(mb.msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(mb.msgs))
	}
	f := reportOfMail(t, mb.msgs[0], "example.com")
	want := PolicyPublished{Domain: "example.com", ADKIM: "s", ASPF: "r", P: "quarantine", SP: "quarantine", Pct: 50}
	if f.Policy != want || f.Metadata.OrgName != "mx.example.net" || f.Metadata.Email != "noreply-dmarc@mx.example.net" ||
		f.Metadata.ReportID != ex.ReportID || f.Metadata.DateRange != (DateRange{day1.Unix(), c.Now().Unix()}) {
		t.Errorf("report head %+v %+v", f.Metadata, f.Policy)
	}
	if len(f.Records) != 2 || f.Records[0].Row.Count != 3 || f.Records[0].Row.SourceIP != "192.0.2.1" ||
		f.Records[1].Row.PolicyEvaluated.Reasons[0].Type != "sampled_out" || f.Records[1].AuthResults.SPF[0].Domain != "forged.example" ||
		len(f.Records[1].AuthResults.DKIM) != 0 || f.Records[0].AuthResults.DKIM[0].Selector != "s1" {
		t.Errorf("records %+v", f.Records)
	}
	// The kept rows come back; the reported ones do not.
	if got := s.Snapshot(); len(got) != 1 || got[0].Domain != "flaky.example" {
		t.Errorf("after Send the store holds %+v, want flaky.example only", got)
	}
	mb.fail = errors.New("451 queue full")
	if sent := r.Send(context.Background(), true); len(sent) != 1 || !sent[0].Kept {
		t.Errorf("second Send %+v", sent)
	}
}
