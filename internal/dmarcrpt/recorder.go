package dmarcrpt

// recorder.go: what inbound verification hands over (an authres.Result
// and what was done with the message) as a Message of the Store.

import "smtpkit/internal/authres"

// Record counts one message inbound verification evaluated, with the
// disposition applied to it (none, quarantine, reject). Only messages
// whose DMARC record applied and asks for aggregate reports (rua=) are
// counted: nobody would read the others' rows. It implements the
// inbound hook (inbound.Options.DMARCReports).
func (s *Store) Record(r authres.Result, disposition string) {
	if m, ok := MessageOf(r, disposition); ok {
		s.Add(m)
	}
}

// MessageOf is the report's view of a verification result; ok is false
// when the message is not reported (no DMARC record applied, or it has
// no rua tag).
func MessageOf(r authres.Result, disposition string) (Message, bool) {
	d := r.DMARC
	if d.Domain == "" || d.Record == "" {
		return Message{}, false
	}
	if rua, ok := tagValue(d.Record, "rua"); !ok || rua == "" {
		return Message{}, false
	}
	row := Row{
		SourceIP: r.IP, HeaderFrom: r.FromDomain, Disposition: disposition,
		DKIM: passIf(d.DKIMAligned), SPF: passIf(d.SPFAligned),
		SPFResult: SPFResult{Domain: r.SPFDomain, Scope: "mfrom", Result: r.SPF},
	}
	// RFC 7489 appendix C PolicyOverrideType: a failing message whose
	// policy was not applied says why.
	if d.Result == "fail" && (d.Policy == "quarantine" || d.Policy == "reject") && disposition == "none" {
		row.Reason = "local_policy" // [verify] dmarc = "header": we do not enforce
		if !d.Sampled {
			row.Reason = "sampled_out" // pct= (§6.6.4)
		}
	}
	for _, k := range r.DKIM {
		row.DKIMResults = append(row.DKIMResults, DKIMResult{Domain: k.Domain, Selector: k.Selector, Result: k.Result})
	}
	return Message{PolicyDomain: d.Domain, Record: d.Record, Row: row}, true
}

func passIf(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}
