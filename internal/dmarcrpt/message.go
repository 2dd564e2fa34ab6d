// Package dmarcrpt is DMARC aggregate reporting (RFC 7489 §7.2): the
// messages that inbound verification evaluated, counted per reporting
// domain (the domain whose DMARC record applied) and UTC day, kept on
// disk, and sent once a day as gzip'd XML reports (appendix C) to the
// rua=mailto: addresses each domain publishes, after the §7.1 check that
// an address outside the domain agreed to take them.
package dmarcrpt

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message is one message DMARC evaluated, as a report counts it. The cli
// fills it from the verifier's result (Recorder); it carries nothing of
// the message but its identifiers.
type Message struct {
	// PolicyDomain is the domain whose DMARC record applied (the report
	// is about it and goes to its rua); Record is that record as
	// published.
	PolicyDomain, Record string
	Row
}

// Row is what one report record counts (RFC 7489 appendix C, "row",
// "identifiers", "auth_results"): messages with the same Row are one
// record with their Count.
type Row struct {
	SourceIP    netip.Addr `json:"source_ip"`
	HeaderFrom  string     `json:"header_from"`
	Disposition string     `json:"disposition"` // none quarantine reject: what we did
	// DKIM and SPF are the policy_evaluated results: "pass" when an
	// aligned identifier passed, else "fail" (§3.1).
	DKIM   string `json:"dkim"`
	SPF    string `json:"spf"`
	Reason string `json:"reason,omitempty"` // policy override (PolicyOverrideType), e.g. sampled_out

	DKIMResults []DKIMResult `json:"dkim_results,omitempty"` // every signature checked
	SPFResult   SPFResult    `json:"spf_result"`
}

// DKIMResult is the outcome of one DKIM signature (DKIMAuthResultType).
type DKIMResult struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector,omitempty"`
	Result   string `json:"result"` // none pass fail policy neutral temperror permerror
}

// SPFResult is the SPF outcome of the identity DMARC used (SPFAuthResultType).
type SPFResult struct {
	Domain string `json:"domain"`
	Scope  string `json:"scope"`  // mfrom or helo
	Result string `json:"result"` // none neutral pass fail softfail temperror permerror
}

// Bounds on one Row's strings (house rule 4: they come from the peer).
const (
	MaxDomainLen = 255 // RFC 1035 §2.3.4
	MaxDKIMRows  = 8   // DKIM results kept per row
	maxResultLen = 16
)

// key identifies a Row within a domain-day.
func (r Row) key() string {
	var b strings.Builder
	for _, s := range []string{r.SourceIP.String(), r.HeaderFrom, r.Disposition, r.DKIM, r.SPF, r.Reason,
		r.SPFResult.Domain, r.SPFResult.Scope, r.SPFResult.Result} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, d := range r.DKIMResults {
		b.WriteString(d.Domain + "\x01" + d.Selector + "\x01" + d.Result + "\x00")
	}
	return b.String()
}

// bounded is r with its peer-controlled strings normalised and cut to
// their bounds.
func (r Row) bounded() Row {
	r.HeaderFrom = domainName(r.HeaderFrom)
	r.Disposition = word(r.Disposition, "none")
	r.DKIM, r.SPF = passFail(r.DKIM), passFail(r.SPF)
	r.Reason = word(r.Reason, "")
	r.SPFResult = SPFResult{Domain: domainName(r.SPFResult.Domain), Scope: word(r.SPFResult.Scope, "mfrom"), Result: word(r.SPFResult.Result, "none")}
	if len(r.DKIMResults) > MaxDKIMRows {
		r.DKIMResults = r.DKIMResults[:MaxDKIMRows]
	}
	ds := make([]DKIMResult, len(r.DKIMResults))
	for i, d := range r.DKIMResults {
		ds[i] = DKIMResult{Domain: domainName(d.Domain), Selector: text(d.Selector, 63), Result: word(d.Result, "none")}
	}
	r.DKIMResults = ds
	return r
}

func passFail(s string) string {
	if s == "pass" {
		return s
	}
	return "fail"
}

func domainName(s string) string {
	return text(strings.ToLower(strings.TrimSuffix(s, ".")), MaxDomainLen)
}

func word(s, def string) string {
	if s == "" {
		return def
	}
	return text(strings.ToLower(s), maxResultLen)
}

// text is s cut to n bytes (at a character boundary) with what XML 1.0
// cannot carry (§2.2: control characters, invalid UTF-8) and spaces
// replaced by "?": the strings come from the peer, and a report must
// say what it saw without breaking the document or a reader's parser.
func text(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	return cut(s, n)
}

// cut is s cut to at most n bytes, at a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
