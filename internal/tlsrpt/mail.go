package tlsrpt

// mail.go: a report as an email (RFC 8460 §5.3).

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// message is the report mail of RFC 8460 §5.3: a multipart/report with
// report-type "tlsrpt", a human-readable first part and the gzip'd JSON
// attached as application/tlsrpt+gzip under the §5.1 file name, with the
// TLS-Report-Domain and TLS-Report-Submitter header fields and the
// Subject the RFC gives. TLS-Required: No (RFC 8689 §5) lets the report
// through a broken TLS policy, which §5.3 asks for ("MUST deliver
// reports despite any TLS-related failures"); Auto-Submitted marks it
// as machine-generated (RFC 3834 §5).
func message(m mailParts) []byte {
	var b bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	header("From", "<"+m.from+">")
	header("To", strings.Join(angle(m.to), ",\r\n\t")) // folded: one address a line (RFC 5322 §2.2.3)
	header("Date", m.date.Format(time.RFC1123Z))
	header("Subject", fmt.Sprintf("Report Domain: %s Submitter: %s Report-ID: <%s>", m.domain, m.submitter, m.reportID))
	header("Message-ID", "<"+m.reportID+">")
	header("TLS-Report-Domain", m.domain)
	header("TLS-Report-Submitter", m.submitter)
	header("TLS-Required", "No")
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", fmt.Sprintf("multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"%s\"", m.boundary))
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "--%s\r\n", m.boundary)
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	for _, line := range m.text {
		b.WriteString(line + "\r\n")
	}
	fmt.Fprintf(&b, "\r\n--%s\r\n", m.boundary)
	b.WriteString("Content-Type: application/tlsrpt+gzip\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	fmt.Fprintf(&b, "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n", m.filename)
	enc := base64.StdEncoding.EncodeToString(m.gz)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", m.boundary)
	return b.Bytes()
}

type mailParts struct {
	from, domain, submitter, reportID, boundary, filename string
	to                                                    []string
	date                                                  time.Time
	text                                                  []string
	gz                                                    []byte
}

func angle(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = "<" + a + ">"
	}
	return out
}

// Filename is the report's file name (RFC 8460 §5.1):
// sender "!" policy-domain "!" begin-timestamp "!" end-timestamp
// "!" unique-id "." extension, timestamps in seconds since the epoch.
func Filename(submitter, domain string, r DateRange, unique string) string {
	return fmt.Sprintf("%s!%s!%d!%d!%s.json.gz", submitter, domain, r.Start.Unix(), r.End.Unix(), unique)
}

// randomHex is n random bytes in hex: report ids, MIME boundaries.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b)
}
