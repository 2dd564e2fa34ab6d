package dns

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// MaxCNAME bounds the CNAME records followed for one lookup, across all the
// queries it takes. Longer chains (and loops) are a temporary failure.
const MaxCNAME = 8

// LookupMX implements Resolver.
func (c *Client) LookupMX(ctx context.Context, domain string) (MXAnswer, error) {
	name, err := fqdn(domain)
	if err != nil {
		return MXAnswer{}, err
	}
	r, err := c.resolve(ctx, name, mdns.TypeMX)
	if err != nil {
		return MXAnswer{}, err
	}
	a := MXAnswer{Authentic: r.authentic, NXDomain: r.nx}
	for _, rr := range r.rrs {
		mx := rr.(*mdns.MX)
		a.Records = append(a.Records, MX{Host: hostName(mx.Mx), Pref: mx.Preference})
	}
	return a, nil
}

// LookupIP implements Resolver. The AAAA and A queries run in parallel.
// When one of them fails and the other returned addresses, the addresses
// are returned (with Authentic false, as half the answer is unknown);
// when neither has addresses, the failure is returned.
func (c *Client) LookupIP(ctx context.Context, host string) (IPAnswer, error) {
	name, err := fqdn(host)
	if err != nil {
		return IPAnswer{}, err
	}
	type outcome struct {
		r   result
		err error
	}
	ch := make(chan outcome, 1)
	go func() {
		r, err := c.resolve(ctx, name, mdns.TypeAAAA)
		ch <- outcome{r, err}
	}()
	r4, err4 := c.resolve(ctx, name, mdns.TypeA)
	o6 := <-ch
	r6, err6 := o6.r, o6.err

	var a IPAnswer
	for _, rr := range r6.rrs {
		if ip, ok := netip.AddrFromSlice(rr.(*mdns.AAAA).AAAA); ok {
			a.IPs = append(a.IPs, ip)
		}
	}
	for _, rr := range r4.rrs {
		if ip, ok := netip.AddrFromSlice(rr.(*mdns.A).A.To4()); ok {
			a.IPs = append(a.IPs, ip)
		}
	}
	switch {
	case err4 != nil && err6 != nil:
		return IPAnswer{}, err4
	case err4 != nil || err6 != nil:
		if len(a.IPs) == 0 {
			return IPAnswer{}, firstErr(err4, err6)
		}
	default:
		a.Authentic = r4.authentic && r6.authentic
		a.NXDomain = r4.nx && r6.nx
	}
	return a, nil
}

// LookupA implements AResolver: the IPv4 addresses of host only, for
// lookups that never want AAAA records (DNS lists, RFC 5782 §2.1).
func (c *Client) LookupA(ctx context.Context, host string) (IPAnswer, error) {
	name, err := fqdn(host)
	if err != nil {
		return IPAnswer{}, err
	}
	r, err := c.resolve(ctx, name, mdns.TypeA)
	if err != nil {
		return IPAnswer{}, err
	}
	a := IPAnswer{Authentic: r.authentic, NXDomain: r.nx}
	for _, rr := range r.rrs {
		if ip, ok := netip.AddrFromSlice(rr.(*mdns.A).A.To4()); ok {
			a.IPs = append(a.IPs, ip)
		}
	}
	return a, nil
}

// LookupTXT implements Resolver.
func (c *Client) LookupTXT(ctx context.Context, name string) (TXTAnswer, error) {
	fq, err := fqdn(name)
	if err != nil {
		return TXTAnswer{}, err
	}
	r, err := c.resolve(ctx, fq, mdns.TypeTXT)
	if err != nil {
		return TXTAnswer{}, err
	}
	a := TXTAnswer{Authentic: r.authentic, NXDomain: r.nx}
	for _, rr := range r.rrs {
		a.Records = append(a.Records, strings.Join(rr.(*mdns.TXT).Txt, ""))
	}
	return a, nil
}

// LookupTLSA implements Resolver. Records whose association data is not
// valid hex are dropped (miekg/dns keeps it as text).
func (c *Client) LookupTLSA(ctx context.Context, name string) (TLSAAnswer, error) {
	fq, err := fqdn(name)
	if err != nil {
		return TLSAAnswer{}, err
	}
	r, err := c.resolve(ctx, fq, mdns.TypeTLSA)
	if err != nil {
		return TLSAAnswer{}, err
	}
	a := TLSAAnswer{Authentic: r.authentic, NXDomain: r.nx}
	for _, rr := range r.rrs {
		t := rr.(*mdns.TLSA)
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			continue
		}
		a.Records = append(a.Records, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
	}
	return a, nil
}

// result is the end of a resolution: the records of the asked type at the
// end of the CNAME chain.
type result struct {
	rrs       []mdns.RR
	authentic bool // every response had AD set
	nx        bool // the end of the chain does not exist
}

// resolve asks for name/qtype and follows CNAMEs (RFC 1034 §3.6.2), first
// within a response (recursive servers usually include the chain) and then
// by asking again for the chain's end, at most MaxCNAME links in all.
func (c *Client) resolve(ctx context.Context, name string, qtype uint16) (result, error) {
	res := result{authentic: true}
	links := 0
	for {
		resp, err := c.query(ctx, name, qtype)
		if err != nil {
			return result{}, err
		}
		noteTTL(ctx, resp)
		res.authentic = res.authentic && resp.AuthenticatedData
		rrs, end, n := chase(resp.Answer, name, qtype)
		links += n
		if links > MaxCNAME {
			return result{}, fmt.Errorf("%w: %s %s: more than %d CNAMEs", ErrTemporary, typeName(qtype), name, MaxCNAME)
		}
		if len(rrs) > 0 {
			res.rrs = rrs
			return res, nil
		}
		if n == 0 {
			// RFC 6604: with no CNAME at name, RCODE is about name itself.
			res.nx = resp.Rcode == mdns.RcodeNameError
			return res, nil
		}
		name = end
	}
}

// chase walks the CNAME chain from name through answer and returns the
// records of qtype at its end, the end's name and the number of CNAME links
// walked. It stops after MaxCNAME+1 links so that a loop inside one
// response ends.
func chase(answer []mdns.RR, name string, qtype uint16) (rrs []mdns.RR, end string, links int) {
	cur := name
	for links <= MaxCNAME {
		var next string
		for _, rr := range answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				rrs = append(rrs, rr)
			case h.Rrtype == mdns.TypeCNAME && next == "":
				next = rr.(*mdns.CNAME).Target
			}
		}
		if len(rrs) > 0 || next == "" {
			return rrs, cur, links
		}
		cur = next
		links++
	}
	return nil, cur, links
}

// fqdn validates a domain or host name (RFC 1035 §2.3.4: labels up to 63
// octets, names up to 255) and returns it fully qualified and lower case.
func fqdn(s string) (string, error) {
	name := mdns.Fqdn(strings.ToLower(s))
	if name == "." || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, s)
	}
	if _, ok := mdns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, s)
	}
	return name, nil
}

// hostName turns an MX target into the form MX.Host documents.
func hostName(target string) string {
	h := strings.ToLower(strings.TrimSuffix(target, "."))
	if h == "" {
		return "."
	}
	return h
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
