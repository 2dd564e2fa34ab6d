package config

import (
	"fmt"
	"strings"
)

// DKIM is one [[dkim]] entry: a signing key for outgoing mail (RFC 6376).
// Several entries for one domain (different selectors) sign every message
// together, typically an Ed25519 key (RFC 8463) beside an RSA one; that is
// also how a key is rotated (docs/authentication.md).
type DKIM struct {
	// Domain is the signing domain (d=, RFC 6376 §3.5): messages whose
	// From domain is this one are signed with the key.
	Domain string `toml:"domain"`
	// Selector names the key under Domain (s=): its public key is published
	// at <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1).
	Selector string `toml:"selector"`
	// Key is the PEM file of the private key: Ed25519, or RSA of at least
	// 2048 bits (RFC 8301 §3.2). It is read, and checked, when serve
	// starts (internal/dkim.LoadKey); `smtpkit dkim keygen` writes one.
	Key string `toml:"key"`
	// Subdomains: the key also signs mail whose From domain is a subdomain
	// of Domain (d= stays Domain, which DMARC's relaxed alignment accepts,
	// RFC 7489 §3.1.1). An entry for the From domain itself wins over a
	// parent's.
	Subdomains bool `toml:"subdomains"`
}

func (v *validator) dkim(ds []DKIM) {
	seen := map[string]bool{}
	for i, d := range ds {
		key := fmt.Sprintf("dkim[%d]", i)
		if !validDomain(d.Domain) {
			v.add(key+".domain", "%q is not a domain name", d.Domain)
		}
		// RFC 6376 §3.1: a selector is dot-separated sub-domain labels.
		if !validDomain(d.Selector) {
			v.add(key+".selector", "%q is not a selector (letters, digits, hyphens; labels separated by dots)", d.Selector)
		}
		if d.Key == "" {
			v.add(key+".key", "missing: the PEM file of the private key (smtpkit dkim keygen writes one)")
		}
		id := strings.ToLower(d.Selector + "._domainkey." + d.Domain)
		if seen[id] {
			v.add(key+".selector", "another [[dkim]] entry already has selector %q for %q", d.Selector, d.Domain)
		}
		seen[id] = true
	}
}
