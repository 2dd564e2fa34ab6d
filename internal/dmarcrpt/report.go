package dmarcrpt

// report.go: the aggregate report, in the XML of RFC 7489 appendix C.

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"strconv"

	"github.com/emersion/go-msgauth/dmarc"
)

// Feedback is the report document (appendix C, element "feedback").
type Feedback struct {
	XMLName  xml.Name        `xml:"feedback"`
	Version  string          `xml:"version"`
	Metadata ReportMetadata  `xml:"report_metadata"`
	Policy   PolicyPublished `xml:"policy_published"`
	Records  []Record        `xml:"record"`
}

// ReportMetadata says who reports, and about when (ReportMetadataType).
type ReportMetadata struct {
	OrgName          string    `xml:"org_name"`
	Email            string    `xml:"email"`
	ExtraContactInfo string    `xml:"extra_contact_info,omitempty"`
	ReportID         string    `xml:"report_id"`
	DateRange        DateRange `xml:"date_range"`
	Errors           []string  `xml:"error,omitempty"`
}

// DateRange is the report's period in seconds since the epoch, UTC
// (DateRangeType; §7.2: begin inclusive, end exclusive here).
type DateRange struct {
	Begin int64 `xml:"begin"`
	End   int64 `xml:"end"`
}

// PolicyPublished is the DMARC record the receiver found (PolicyPublishedType).
type PolicyPublished struct {
	Domain string `xml:"domain"`
	ADKIM  string `xml:"adkim,omitempty"`
	ASPF   string `xml:"aspf,omitempty"`
	P      string `xml:"p"`
	SP     string `xml:"sp"`
	Pct    int    `xml:"pct"`
}

// Record is one row with its count (RecordType).
type Record struct {
	Row         RecordRow   `xml:"row"`
	Identifiers Identifiers `xml:"identifiers"`
	AuthResults AuthResults `xml:"auth_results"`
}

// RecordRow is RowType: the source address, the count and what DMARC said.
type RecordRow struct {
	SourceIP        string          `xml:"source_ip"`
	Count           int64           `xml:"count"`
	PolicyEvaluated PolicyEvaluated `xml:"policy_evaluated"`
}

// PolicyEvaluated is PolicyEvaluatedType: the disposition applied and the
// aligned DKIM and SPF results.
type PolicyEvaluated struct {
	Disposition string   `xml:"disposition"`
	DKIM        string   `xml:"dkim"`
	SPF         string   `xml:"spf"`
	Reasons     []Reason `xml:"reason,omitempty"`
}

// Reason is PolicyOverrideReason: why the disposition differs from the policy.
type Reason struct {
	Type    string `xml:"type"`
	Comment string `xml:"comment,omitempty"`
}

// Identifiers is IdentifierType.
type Identifiers struct {
	HeaderFrom string `xml:"header_from"`
}

// AuthResults is AuthResultType: the underlying DKIM and SPF results.
type AuthResults struct {
	DKIM []DKIMAuth `xml:"dkim,omitempty"`
	SPF  []SPFAuth  `xml:"spf"`
}

// DKIMAuth is DKIMAuthResultType.
type DKIMAuth struct {
	Domain   string `xml:"domain"`
	Selector string `xml:"selector,omitempty"`
	Result   string `xml:"result"`
}

// SPFAuth is SPFAuthResultType.
type SPFAuth struct {
	Domain string `xml:"domain"`
	Scope  string `xml:"scope,omitempty"`
	Result string `xml:"result"`
}

// Reporter identity in a report.
type Org struct {
	Name, Email, Contact string
}

// Report is p's report, from org, with the id given.
func (p Pending) Report(org Org, id string) Feedback {
	f := Feedback{
		Version: "1.0",
		Metadata: ReportMetadata{OrgName: org.Name, Email: org.Email, ExtraContactInfo: org.Contact, ReportID: id,
			DateRange: DateRange{Begin: p.Start.Unix(), End: p.End.Unix()}},
		Policy: published(p.Domain, p.Record),
	}
	for _, c := range p.Rows {
		r := Record{
			Row: RecordRow{SourceIP: c.SourceIP.String(), Count: c.Count,
				PolicyEvaluated: PolicyEvaluated{Disposition: c.Disposition, DKIM: c.DKIM, SPF: c.SPF}},
			Identifiers: Identifiers{HeaderFrom: c.HeaderFrom},
			AuthResults: AuthResults{SPF: []SPFAuth{{Domain: c.SPFResult.Domain, Scope: c.SPFResult.Scope, Result: c.SPFResult.Result}}},
		}
		if c.Reason != "" {
			r.Row.PolicyEvaluated.Reasons = []Reason{{Type: c.Reason}}
		}
		for _, d := range c.DKIMResults {
			r.AuthResults.DKIM = append(r.AuthResults.DKIM, DKIMAuth{Domain: d.Domain, Selector: d.Selector, Result: d.Result})
		}
		f.Records = append(f.Records, r)
	}
	return f
}

// published is the policy_published of a record text: the p, sp
// (defaulting to p, §6.3), pct (default 100) and alignment modes it
// gives; a record that no longer parses reports p=none.
func published(domain, record string) PolicyPublished {
	pp := PolicyPublished{Domain: domain, ADKIM: "r", ASPF: "r", P: "none", SP: "none", Pct: 100}
	rec, err := dmarc.Parse(record)
	if err != nil {
		return pp
	}
	pp.ADKIM, pp.ASPF, pp.P, pp.SP = string(rec.DKIMAlignment), string(rec.SPFAlignment), string(rec.Policy), string(rec.SubdomainPolicy)
	if pp.SP == "" {
		pp.SP = pp.P
	}
	if rec.Percent != nil {
		pp.Pct = *rec.Percent
	}
	return pp
}

// Marshal is the report as an XML document.
func (f Feedback) Marshal() ([]byte, error) {
	data, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(data, '\n')...), nil
}

// Gzip is the report document gzip'd (§7.2.1.1: "gzip" compression).
func (f Feedback) Gzip() ([]byte, error) {
	data, err := f.Marshal()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data) // a bytes.Buffer does not fail
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Filename is the report's file name (RFC 7489 §7.2.1.1):
// receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp
// "!" unique-id "." extension.
func Filename(receiver, domain string, r DateRange, unique string) string {
	return receiver + "!" + domain + "!" + strconv.FormatInt(r.Begin, 10) + "!" + strconv.FormatInt(r.End, 10) + "!" + unique + ".xml.gz"
}
