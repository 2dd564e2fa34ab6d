package authres

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// orgDomain is the organizational domain of d (RFC 7489 §3.2): the public
// suffix (publicsuffix.org list) plus one label; a name that is itself a
// public suffix is its own.
func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the From
// domain (RFC 7489 §3.1): equal in strict mode, sharing the
// organizational domain in relaxed mode.
func aligned(id, from string, mode dmarc.AlignmentMode) bool {
	id, from = lowerDomain(id), lowerDomain(from)
	if id == "" || from == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return id == from
	}
	return orgDomain(id) == orgDomain(from)
}

func lowerDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// record is a DMARC record found for a From domain.
type record struct {
	rec    *dmarc.Record
	text   string
	domain string // where it was published (without _dmarc.)
}

// errTemp and errInvalid tell a DNS failure and an unparsable record
// apart from no record.
var (
	errTemp    = errors.New("DMARC record lookup failed")
	errNoRec   = errors.New("no DMARC record")
	errInvalid = errors.New("invalid DMARC record")
)

// lookupRecord is DMARC policy discovery (RFC 7489 §6.6.3): the record at
// _dmarc.<From domain>, else at _dmarc.<organizational domain>. A name
// with no record, or with more than one, has none.
func (v *Verifier) lookupRecord(ctx context.Context, from string) (record, error) {
	names := []string{from}
	if org := orgDomain(from); org != from {
		names = append(names, org)
	}
	r := netResolver{res: v.res}
	for _, d := range names {
		txts, err := r.LookupTXT(ctx, "_dmarc."+d)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				continue
			}
			return record{}, errTemp
		}
		var found []string
		for _, t := range txts {
			if t == "v=DMARC1" || strings.HasPrefix(t, "v=DMARC1;") || strings.HasPrefix(t, "v=DMARC1 ") {
				found = append(found, t)
			}
		}
		if len(found) != 1 {
			continue
		}
		rec, err := dmarc.Parse(found[0])
		if err != nil {
			fixed, ok := policyNone(found[0])
			if !ok {
				return record{text: found[0], domain: d}, errInvalid
			}
			if rec, err = dmarc.Parse(fixed); err != nil {
				return record{text: found[0], domain: d}, errInvalid
			}
		}
		return record{rec: rec, text: found[0], domain: d}, nil
	}
	return record{}, errNoRec
}

// evalDMARC evaluates DMARC for a message (RFC 7489 §6.6): the From domain,
// its record, the alignment of SPF (the MAIL FROM domain, or HELO for the
// null sender, §4.1) and of DKIM (d= of a passing signature), and the
// policy and pct that apply.
func (v *Verifier) evalDMARC(ctx context.Context, m message, r Result) DMARC {
	switch {
	case m.fromErr != "":
		return DMARC{Result: "permerror", Reason: m.fromErr}
	case m.fromNone:
		return DMARC{Result: "none", Reason: "no From field"}
	}
	from := m.fromDomain
	rec, err := v.lookupRecord(ctx, from)
	switch {
	case errors.Is(err, errNoRec):
		return DMARC{Result: "none", Reason: "no DMARC record"}
	case errors.Is(err, errTemp):
		return DMARC{Result: "temperror", Reason: err.Error()}
	case err != nil:
		return DMARC{Result: "permerror", Reason: err.Error(), Domain: rec.domain, Record: rec.text}
	}
	d := DMARC{Domain: rec.domain, Record: rec.text, Policy: string(rec.rec.Policy)}
	if rec.domain != from && rec.rec.SubdomainPolicy != "" {
		// RFC 7489 §6.3: sp= is the policy for subdomains of the
		// organizational domain that have no record of their own.
		d.Policy = string(rec.rec.SubdomainPolicy)
	}
	d.Sampled = v.sampled(rec.rec.Percent)

	temp := false
	d.SPFAligned = r.SPF == "pass" && aligned(r.SPFDomain, from, rec.rec.SPFAlignment)
	if r.SPF == "temperror" && aligned(r.SPFDomain, from, rec.rec.SPFAlignment) {
		temp = true
	}
	for _, s := range r.DKIM {
		if !aligned(s.Domain, from, rec.rec.DKIMAlignment) {
			continue
		}
		switch s.Result {
		case "pass":
			d.DKIMAligned = true
		case "temperror":
			temp = true
		}
	}
	switch {
	case d.SPFAligned || d.DKIMAligned:
		d.Result = "pass"
	case temp:
		// An aligned identifier could not be checked: it might have
		// passed, so this is no failure to act on.
		d.Result, d.Reason = "temperror", "an aligned check had a DNS failure"
	default:
		d.Result, d.Reason = "fail", "no aligned SPF or DKIM pass"
	}
	return d
}

// sampled applies pct= (RFC 7489 §6.6.4): the policy applies to that
// percentage of failing messages, chosen at random; no pct= means 100.
func (v *Verifier) sampled(pct *int) bool {
	if pct == nil || *pct >= 100 {
		return true
	}
	if *pct <= 0 {
		return false
	}
	return v.intn(100) < *pct
}

// policyNone rewrites a record whose p= or sp= is missing or invalid but
// that asks for aggregate reports with a mailto: rua=: RFC 7489 §6.6.3
// says to act as if it said p=none (so that the domain gets its reports).
// It reports false for a record that does not qualify.
func policyNone(txt string) (string, bool) {
	var kept []string
	rua := false
	for _, spec := range strings.Split(txt, ";") {
		k, v, _ := strings.Cut(spec, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "p", "sp":
			continue
		case "rua":
			for _, u := range strings.Split(v, ",") {
				rua = rua || strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "mailto:") && strings.Contains(u, "@")
			}
		}
		if k != "" {
			kept = append(kept, k+"="+v)
		}
	}
	if !rua || len(kept) == 0 || kept[0] != "v=DMARC1" {
		return "", false
	}
	return strings.Join(append(kept[:1], append([]string{"p=none"}, kept[1:]...)...), "; "), true
}
