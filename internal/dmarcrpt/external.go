package dmarcrpt

// external.go: the external destination check (RFC 7489 §7.1).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"smtpkit/internal/dns"
)

// TXTResolver is the lookup the check needs (dns.Resolver has it).
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error)
}

// ErrNotAuthorized is wrapped by Authorize's error when the destination's
// domain did not agree to receive the policy domain's reports.
var ErrNotAuthorized = errors.New("dmarcrpt: external destination not authorized")

// OrgDomain is the organizational domain of name (§3.2): the public
// suffix and one label more; name itself when it has no more labels.
func OrgDomain(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return org
}

// Authorize checks that d may receive policyDomain's reports (§7.1).
// A destination in the policy domain's organizational domain may. One
// outside must publish a TXT record beginning "v=DMARC1" at
// <policy-domain>._report._dmarc.<destination host>; when that record
// has an rua tag, its destinations replace d (§7.1 lets the report
// receiver name where it wants them), those in the destination host's
// organizational domain only, so that the check cannot be chained.
// A DNS failure that may go away wraps dns.ErrTemporary.
func Authorize(ctx context.Context, res TXTResolver, policyDomain string, d Destination) ([]Destination, error) {
	host := d.Domain()
	if OrgDomain(host) == OrgDomain(policyDomain) {
		return []Destination{d}, nil
	}
	name := strings.TrimSuffix(policyDomain, ".") + "._report._dmarc." + host
	ans, err := res.LookupTXT(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("dmarcrpt: %s TXT: %w", name, err)
	}
	for _, txt := range ans.Records {
		if !isDMARC1(txt) {
			continue
		}
		rua, ok := tagValue(txt, "rua")
		if !ok {
			return []Destination{d}, nil
		}
		ds, _ := uriList(strings.Split(rua, ","))
		var out []Destination
		for _, o := range ds {
			if OrgDomain(o.Domain()) == OrgDomain(host) {
				out = append(out, o)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: %s names no rua in %s", ErrNotAuthorized, name, OrgDomain(host))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: no v=DMARC1 record at %s", ErrNotAuthorized, name)
}

// isDMARC1 reports whether txt begins with the version tag (§7.1: "TXT
// resource records that begin with "v=DMARC1""; the tag may have
// spaces around "=", §6.4).
func isDMARC1(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	k, v, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(k) == "v" && strings.TrimSpace(v) == "DMARC1"
}

// tagValue is the value of tag in a tag-value list (§6.4).
func tagValue(txt, tag string) (string, bool) {
	for _, f := range strings.Split(txt, ";") {
		k, v, ok := strings.Cut(f, "=")
		if ok && strings.TrimSpace(k) == tag {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
