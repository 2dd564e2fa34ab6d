package tlsrpt

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// rfcExample is the example report of RFC 8460 §4.6 (whitespace aside).
const rfcExample = `{
  "organization-name": "Company-X",
  "date-range": {
    "start-datetime": "2016-04-01T00:00:00Z",
    "end-datetime": "2016-04-01T23:59:59Z"
  },
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1","mode: testing",
            "mx: *.mail.company-y.example","max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": ["*.mail.company-y.example"]
    },
    "summary": {
      "total-successful-session-count": 5326,
      "total-failure-session-count": 303
    },
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "failed-session-count": 100
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 200,
      "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
    }, {
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.company-y.example",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }]
  }]
}`

func TestParseRFCExample(t *testing.T) {
	r, err := ParseReport([]byte(rfcExample))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Policies[0]
	if r.OrganizationName != "Company-X" || !r.DateRange.End.Equal(time.Date(2016, 4, 1, 23, 59, 59, 0, time.UTC)) ||
		p.Policy.Type != PolicySTS || p.Summary != (Summary{5326, 303}) || len(p.FailureDetails) != 3 ||
		p.FailureDetails[1].ReceivingIP != "203.0.113.56" || p.FailureDetails[2].ResultType != ValidationFailure {
		t.Errorf("parsed: %s", js(r))
	}
	// What Marshal writes parses back to the same report.
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReport(data)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip: %v\n got %s\nwant %s", err, js(back), js(r))
	}
}

func TestParseReportRejects(t *testing.T) {
	good := func(edit func(string) string) string { return edit(rfcExample) }
	tests := []struct{ name, json string }{
		{"not json", "{"},
		{"trailing data", rfcExample + "{}"},
		{"no report-id", good(func(s string) string { return strings.Replace(s, `"report-id"`, `"x"`, 1) })},
		{"no date range", good(func(s string) string { return strings.Replace(s, `"date-range"`, `"x"`, 1) })},
		{"ends before start", good(func(s string) string { return strings.Replace(s, "2016-04-01T23:59:59Z", "2016-03-01T23:59:59Z", 1) })},
		{"bad date", good(func(s string) string { return strings.Replace(s, "2016-04-01T00:00:00Z", "April 1st", 1) })},
		{"unknown policy type", good(func(s string) string { return strings.Replace(s, `"policy-type": "sts"`, `"policy-type": "dmarc"`, 1) })},
		{"no policy domain", good(func(s string) string { return strings.Replace(s, `"policy-domain"`, `"x"`, 1) })},
		{"negative count", good(func(s string) string { return strings.Replace(s, "5326", "-1", 1) })},
		{"negative failed count", good(func(s string) string {
			return strings.Replace(s, `"failed-session-count": 100`, `"failed-session-count": -100`, 1)
		})},
		{"no result type", good(func(s string) string { return strings.Replace(s, `"result-type": "certificate-expired",`, ``, 1) })},
		{"count not a number", good(func(s string) string { return strings.Replace(s, "5326", `"5326"`, 1) })},
	}
	for _, tt := range tests {
		if _, err := ParseReport([]byte(tt.json)); err == nil {
			t.Errorf("%s: parsed", tt.name)
		}
	}
}

func TestPendingReport(t *testing.T) {
	p := Pending{Domain: "a.example", Start: day1, End: day1.Add(day), Policies: []PolicyResult{{
		Policy: Policy{Type: PolicyNone, Domain: "a.example"}, Summary: Summary{Successful: 3}}}}
	r := p.Report("mx.us.example", "postmaster@us.example", "id-1")
	if !r.DateRange.Start.Equal(day1) || !r.DateRange.End.Equal(day1.Add(day-time.Second)) {
		t.Errorf("date range %v..%v", r.DateRange.Start, r.DateRange.End)
	}
	data, _ := r.Marshal()
	for _, want := range []string{`"start-datetime":"2026-12-01T00:00:00Z"`, `"end-datetime":"2026-12-01T23:59:59Z"`,
		`"policy-type":"no-policy-found"`, `"total-successful-session-count":3`, `"total-failure-session-count":0`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("report lacks %s: %s", want, data)
		}
	}
	if _, err := ParseReport(data); err != nil {
		t.Errorf("our own report does not parse: %v", err)
	}
	// A cut inside a second still gives a range that does not end
	// before it starts.
	p.End = day1.Add(300 * time.Millisecond)
	if r := p.Report("o", "c", "i"); r.DateRange.End.Before(r.DateRange.Start) {
		t.Errorf("range %v..%v", r.DateRange.Start, r.DateRange.End)
	}
}
