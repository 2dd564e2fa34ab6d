package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Report is the aggregate report of RFC 8460 §4.4 (the JSON of §4.5's
// schema): one reporting organization, one policy domain, one date
// range, and the sessions counted under each policy met there.
type Report struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        DateRange      `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []PolicyResult `json:"policies"`
}

// DateRange is the period a report covers, RFC 3339 date-times in UTC.
// RFC 8460 §4.1 asks for a 24-hour UTC day; End is its last second, as
// in the RFC's example ("...T23:59:59Z").
type DateRange struct {
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is one entry of "policies": a policy and the sessions
// evaluated under it.
type PolicyResult struct {
	Policy         Policy          `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// Policy identifies the policy sessions were evaluated under (§4.4):
// its type, its text (the STS policy's lines or the TLSA records), the
// policy domain and the MX hosts it names (STS "mx:" patterns, or the
// MX host a TLSA record set belongs to).
type Policy struct {
	Type   PolicyType `json:"policy-type"`
	String []string   `json:"policy-string,omitempty"`
	Domain string     `json:"policy-domain"`
	MXHost []string   `json:"mx-host,omitempty"`
}

// Summary counts the sessions of a policy (§4.4).
type Summary struct {
	Successful int64 `json:"total-successful-session-count"`
	Failed     int64 `json:"total-failure-session-count"`
}

// FailureDetail counts failed sessions that share a result type, the
// addresses and the MX host (§4.4).
type FailureDetail struct {
	ResultType            ResultType `json:"result-type"`
	SendingMTAIP          string     `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname   string     `json:"receiving-mx-hostname,omitempty"`
	ReceivingMXHelo       string     `json:"receiving-mx-helo,omitempty"`
	ReceivingIP           string     `json:"receiving-ip,omitempty"`
	FailedSessionCount    int64      `json:"failed-session-count"`
	AdditionalInformation string     `json:"additional-information,omitempty"`
	FailureReasonCode     string     `json:"failure-reason-code,omitempty"`
}

// MaxReport bounds what ParseReport reads (a report is data from a peer
// when smtpkit receives one; house rule 4).
const MaxReport = 16 << 20

// Marshal encodes r as the report JSON.
func (r Report) Marshal() ([]byte, error) { return json.Marshal(r) }

// ParseReport decodes a report's JSON and checks what RFC 8460 §4.4
// requires of it: a report-id, a date range that does not end before it
// starts, a policy type and domain for every policy, and no negative
// count. Unknown fields are ignored (§4.4 allows extensions); unknown
// result types are kept (the IANA registry of §6.5 grows).
func ParseReport(data []byte) (Report, error) {
	var r Report
	if len(data) > MaxReport {
		return r, fmt.Errorf("tlsrpt: report of %d bytes, more than %d", len(data), MaxReport)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("tlsrpt: report JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Report{}, errors.New("tlsrpt: report JSON: data after the report")
	}
	if err := r.check(); err != nil {
		return Report{}, err
	}
	for i := range r.Policies { // an empty list is no list (they are optional)
		p := &r.Policies[i]
		if len(p.Policy.String) == 0 {
			p.Policy.String = nil
		}
		if len(p.Policy.MXHost) == 0 {
			p.Policy.MXHost = nil
		}
		if len(p.FailureDetails) == 0 {
			p.FailureDetails = nil
		}
	}
	return r, nil
}

func (r Report) check() error {
	if r.ReportID == "" {
		return errors.New("tlsrpt: report has no report-id")
	}
	if r.DateRange.Start.IsZero() || r.DateRange.End.IsZero() || r.DateRange.End.Before(r.DateRange.Start) {
		return errors.New("tlsrpt: report's date-range is missing or ends before it starts")
	}
	for i, p := range r.Policies {
		switch p.Policy.Type {
		case PolicyTLSA, PolicySTS, PolicyNone:
		default:
			return fmt.Errorf("tlsrpt: policy %d: unknown policy-type %q", i, p.Policy.Type)
		}
		if p.Policy.Domain == "" {
			return fmt.Errorf("tlsrpt: policy %d has no policy-domain", i)
		}
		if p.Summary.Successful < 0 || p.Summary.Failed < 0 {
			return fmt.Errorf("tlsrpt: policy %d: negative session count", i)
		}
		for j, d := range p.FailureDetails {
			if d.ResultType == "" {
				return fmt.Errorf("tlsrpt: policy %d, failure %d: no result-type", i, j)
			}
			if d.FailedSessionCount < 0 {
				return fmt.Errorf("tlsrpt: policy %d, failure %d: negative failed-session-count", i, j)
			}
		}
	}
	return nil
}

// Report is the RFC 8460 report of p: organization and contact are the
// submitter's, id the report-id. The date range is p's, to the second,
// its end the last second counted (End is exclusive in Pending).
func (p Pending) Report(organization, contact, id string) Report {
	start := p.Start.UTC().Truncate(time.Second)
	end := p.End.UTC().Truncate(time.Second).Add(-time.Second)
	if end.Before(start) {
		end = start
	}
	return Report{
		OrganizationName: organization,
		DateRange:        DateRange{Start: start, End: end},
		ContactInfo:      contact,
		ReportID:         id,
		Policies:         p.Policies,
	}
}
