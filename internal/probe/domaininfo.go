package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
	"smtpkit/internal/tlsrpt"
)

// Domain is what the probe found about a DOMAIN target besides the ports
// of its next hops (Report.Domains): the DNS records that decide enforced
// TLS, and one verdict per next hop. The JSON field names are stable
// (docs/probe.md).
type Domain struct {
	Domain string `json:"domain"`
	// Route is the static route the domain's mail takes; MX is then nil.
	Route string  `json:"route,omitempty"`
	MX    *MXInfo `json:"mx"`
	// Hops are the next hops in the order delivery tries them, each with
	// the plan the queue would use and the verdict of its probe.
	Hops   []HopInfo   `json:"hops"`
	MTASTS *STSInfo    `json:"mta_sts"`
	TLSRPT *TLSRPTInfo `json:"tlsrpt"`
	// Error is why the domain has no route ("" when it has one).
	Error string `json:"error"`
}

// DNSSEC status words of an answer: the AD bit (RFC 4035 §3.2.3) as the
// resolver set it.
const (
	DNSSECSecure   = "secure"   // AD set: the resolver validated the answer
	DNSSECInsecure = "insecure" // no AD: unsigned, or not validated
)

func dnssecWord(authentic bool) string {
	if authentic {
		return DNSSECSecure
	}
	return DNSSECInsecure
}

// MXInfo is the domain's MX answer.
type MXInfo struct {
	Records []string `json:"records"` // "10 mx1.example.net", as answered
	DNSSEC  string   `json:"dnssec"`  // "secure", "insecure"; "" when the lookup failed
	Error   string   `json:"error"`
}

// HopInfo is one next hop and the verdict for it.
type HopInfo struct {
	Host      string   `json:"host"`
	Port      int      `json:"port"`
	Pref      int      `json:"pref,omitempty"`
	Addresses []string `json:"addresses"` // in the order they are tried
	// AddressDNSSEC is the status of the host's address answer (MX hops
	// only, "" when not looked up); Authentic is route.Hop.Authentic: the
	// MX and address answers were both secure, as DANE requires
	// (RFC 7672 §2.2).
	AddressDNSSEC string `json:"address_dnssec"`
	Authentic     bool   `json:"authentic"`
	// Plan is the tlspolicy plan the queue would follow to this hop,
	// Mechanism what decided it, Authenticated whether it authenticates
	// the server's name (DANE, MTA-STS enforce, verify: what a REQUIRETLS
	// message needs, RFC 8689 §5).
	Plan          string `json:"plan"`
	Mechanism     string `json:"mechanism"`
	Authenticated bool   `json:"authenticated"`
	// TLSA is the hop's TLSA RRset at _port._tcp.host; nil for static
	// routes and when DNS has none.
	TLSA *TLSAInfo `json:"tlsa"`
	// MTASTSMatch says whether the host matches an mx pattern of the
	// domain's MTA-STS policy, MTASTSWebPKI whether every address that
	// did TLS presented a certificate WebPKI-valid for the host (what an
	// MTA-STS policy demands, RFC 8461 §4.2); nil without a policy.
	MTASTSMatch  *bool `json:"mta_sts_match"`
	MTASTSWebPKI *bool `json:"mta_sts_webpki_valid"`
	// Verdict says in words what delivery would do here and why;
	// Deliverable reports that at least one address would take the mail
	// under the plan.
	Verdict     string `json:"verdict"`
	Deliverable bool   `json:"deliverable"`
	// EnforcedTLSFails: TLS that the domain enforces (DANE, MTA-STS
	// enforce) fails here — the hop is refused, or an address that
	// answered does not meet the plan (exit status 5).
	EnforcedTLSFails bool `json:"enforced_tls_fails"`
	// RequireTLS says what would become of a message sent with
	// REQUIRETLS (RFC 8689): "relayed", or why it would bounce (5.7.30).
	RequireTLS string `json:"requiretls"`

	requireTLS tlspolicy.Plan // the plan for a REQUIRETLS message
}

// TLSAInfo is a hop's TLSA records and whether DANE uses them.
type TLSAInfo struct {
	Records []string `json:"records"` // presentation form, "3 1 1 ab12..."
	Usable  int      `json:"usable"`  // usages 2 and 3, known selectors and matching types (RFC 7672 §3.1)
	DNSSEC  string   `json:"dnssec"`  // the TLSA answer: "secure", "insecure"; "" when the lookup failed
	// Used: DANE applies (the hop's MX, address and TLSA answers were all
	// secure); else Note says why the records are ignored.
	Used  bool   `json:"used"`
	Note  string `json:"note"`
	Error string `json:"error"` // the lookup failed (delivery defers, RFC 7672 §2.2)
}

// STSInfo is the domain's MTA-STS record (RFC 8461 §3.1).
type STSInfo struct {
	TXT   []string `json:"txt"` // the TXT records at _mta-sts.<domain> starting with v=STSv1
	ID    string   `json:"id"`  // the id of the one valid record
	Error string   `json:"error"`
	// Policy is the policy in force as the queue's MTA-STS cache finds it
	// (fetched over HTTPS from mta-sts.<domain>, WebPKI-checked); nil
	// when there is none or MTA-STS is off. PolicyError is the lookup's
	// problem (fetch error, invalid policy, bad certificate), also when a
	// cached policy still applies.
	Policy      *STSPolicy `json:"policy"`
	PolicyError string     `json:"policy_error"`
	// Note says why no policy is shown although a record is published.
	Note string `json:"note,omitempty"`
}

// STSPolicy is an MTA-STS policy (RFC 8461 §3.2).
type STSPolicy struct {
	Mode   string   `json:"mode"`    // enforce, testing or none
	MaxAge int64    `json:"max_age"` // seconds
	MX     []string `json:"mx"`      // the mx patterns
	ID     string   `json:"id"`      // the TXT id it was fetched under
}

// TLSRPTInfo is the domain's TLS-RPT record (RFC 8460 §3).
type TLSRPTInfo struct {
	TXT   []string `json:"txt"` // the TXT records at _smtp._tls.<domain> starting with v=TLSRPTv1
	RUA   []string `json:"rua"` // where reports go: mailto: and https: URIs
	Error string   `json:"error"`
}

// lookupDomain fills in the DNS side of d (the MX answer, each MX host's
// address answer, the MTA-STS and TLS-RPT records) through res. The
// lookups run one after the other within one Timeout.
func lookupDomain(ctx context.Context, d *Domain, hops []route.Hop, res dns.Resolver, opts Options) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if d.Route == "" {
		d.MX = lookupMX(ctx, res, d.Domain)
		for i, hop := range hops {
			if ans, err := res.LookupIP(ctx, hop.Host); err == nil {
				d.Hops[i].AddressDNSSEC = dnssecWord(ans.Authentic)
			}
		}
	}
	for i, hop := range hops {
		if d.Hops[i].TLSA == nil && hop.Route == nil {
			d.Hops[i].TLSA = ignoredTLSA(ctx, res, hop)
		}
	}
	d.MTASTS = lookupSTS(ctx, res, d.Domain)
	if len(hops) > 0 && hops[0].STS != nil {
		// The router's MTA-STS state is the domain's, shared by its hops.
		st := hops[0].STS
		if p := st.Policy; p != nil {
			d.MTASTS.Policy = &STSPolicy{Mode: string(p.Mode), MaxAge: int64(p.MaxAge.Seconds()), MX: p.MX, ID: p.ID}
		}
		if st.Err != nil {
			d.MTASTS.PolicyError = st.Err.Error()
		}
	}
	if m := d.MTASTS; m.ID != "" && m.Policy == nil && m.PolicyError == "" {
		switch {
		case d.Route != "":
			m.Note = "not applied: the domain's mail takes a static route"
		case len(hops) > 0:
			m.Note = "no policy in force: mode none, or MTA-STS is off (outbound.mta_sts = false)"
		}
	}
	d.TLSRPT = lookupTLSRPT(ctx, res, d.Domain)
}

// tlsaInfo describes the TLSA state the router attached to a hop (only
// for hops whose MX and address answers were secure, with DANE on).
func tlsaInfo(st *tlspolicy.DANE) *TLSAInfo {
	if st == nil {
		return nil
	}
	info := &TLSAInfo{Records: formatTLSA(st.Records), Usable: usableTLSA(st.Records)}
	if st.Err != nil {
		info.Error = st.Err.Error()
		info.Note = "the TLSA lookup failed: delivery defers, never falls back to plaintext (RFC 7672 §2.2)"
		return info
	}
	info.DNSSEC, info.Used = DNSSECSecure, true
	if info.Usable == 0 {
		info.Note = "no usable record: TLS required without authentication (RFC 7672 §2.2)"
	}
	return info
}

// ignoredTLSA looks the TLSA records of an MX hop the router attached
// none to, to say why DANE ignores any there are; nil when there are none
// (or the lookup fails: then DANE would not have used them either).
func ignoredTLSA(ctx context.Context, res dns.Resolver, hop route.Hop) *TLSAInfo {
	ans, err := res.LookupTLSA(ctx, "_"+strconv.Itoa(hop.Port)+"._tcp."+hop.Host)
	if err != nil || len(ans.Records) == 0 {
		return nil
	}
	info := &TLSAInfo{Records: formatTLSA(ans.Records), Usable: usableTLSA(ans.Records), DNSSEC: dnssecWord(ans.Authentic)}
	switch {
	case !hop.Authentic:
		info.Note = "ignored: the MX or address answer is not DNSSEC-validated (RFC 7672 §2.2)"
	case !ans.Authentic:
		info.Note = "ignored: the TLSA answer is not DNSSEC-validated (RFC 7672 §2.2)"
	default:
		info.Note = "ignored: DANE is off (outbound.dane = false)"
	}
	return info
}

func formatTLSA(rs []dns.TLSA) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, dane.Format(r))
	}
	return out
}

func usableTLSA(rs []dns.TLSA) int {
	n := 0
	for _, r := range rs {
		if dane.Usable(r) {
			n++
		}
	}
	return n
}

func lookupMX(ctx context.Context, res dns.Resolver, domain string) *MXInfo {
	info := &MXInfo{Records: []string{}}
	ans, err := res.LookupMX(ctx, domain)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	for _, mx := range ans.Records {
		info.Records = append(info.Records, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
	}
	info.DNSSEC = dnssecWord(ans.Authentic)
	if ans.NXDomain {
		info.Error = "NXDOMAIN"
	}
	return info
}

// lookupSTS reads _mta-sts.<domain> (RFC 8461 §3.1): records not starting
// with v=STSv1 are ignored; unless exactly one remains and it parses, the
// domain has no usable record.
func lookupSTS(ctx context.Context, res dns.Resolver, domain string) *STSInfo {
	info := &STSInfo{TXT: []string{}}
	txt, err := versionRecords(ctx, res, "_mta-sts."+domain, "v=STSv1")
	info.TXT = txt
	switch {
	case err != nil:
		info.Error = err.Error()
	case len(txt) == 0:
		info.Error = "no MTA-STS record"
	case len(txt) > 1:
		info.Error = fmt.Sprintf("%d v=STSv1 records: none applies (RFC 8461 §3.1)", len(txt))
	default:
		info.ID, err = mtasts.ParseRecord(txt[0])
		if err != nil {
			info.Error = err.Error()
		}
	}
	return info
}

// lookupTLSRPT reads _smtp._tls.<domain> by tlsrpt's rules (RFC 8460
// §3): records that are not TLS-RPT records are ignored, and unless
// exactly one remains the domain asks for no reports.
func lookupTLSRPT(ctx context.Context, res dns.Resolver, domain string) *TLSRPTInfo {
	info := &TLSRPTInfo{TXT: []string{}, RUA: []string{}}
	name := "_smtp._tls." + domain
	ans, err := res.LookupTXT(ctx, name)
	if err != nil {
		info.Error = fmt.Sprintf("TXT lookup of %s failed: %v", name, err)
		return info
	}
	var rec tlsrpt.Record
	for _, txt := range ans.Records {
		r, err := tlsrpt.ParseRecord(txt)
		if errors.Is(err, tlsrpt.ErrNotTLSRPT) {
			continue
		}
		info.TXT = append(info.TXT, txt)
		rec = r
		if err != nil {
			info.Error = strings.TrimPrefix(err.Error(), "tlsrpt: ")
		}
	}
	switch {
	case len(info.TXT) == 0:
		info.Error = "no TLS-RPT record: the domain asks for no reports"
	case len(info.TXT) > 1:
		info.Error = fmt.Sprintf("%d v=TLSRPTv1 records: none applies (RFC 8460 §3)", len(info.TXT))
	case info.Error == "":
		for _, u := range rec.RUA {
			info.RUA = append(info.RUA, u.String())
		}
	}
	return info
}

// versionRecords returns the TXT records of name that start with version
// (the others belong to something else); a name without TXT records
// gives none and no error.
func versionRecords(ctx context.Context, res dns.Resolver, name, version string) ([]string, error) {
	ans, err := res.LookupTXT(ctx, name)
	if err != nil {
		return []string{}, fmt.Errorf("TXT lookup of %s failed: %w", name, err)
	}
	out := []string{}
	for _, r := range ans.Records {
		if strings.HasPrefix(r, version) {
			out = append(out, r)
		}
	}
	return out, nil
}
