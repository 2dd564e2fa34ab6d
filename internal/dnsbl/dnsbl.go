// Package dnsbl asks DNS-based block and allow lists (DNSBLs and DNSWLs,
// RFC 5782) about a client address, the way Postfix's postscreen does:
// each zone has a weight (negative for an allow list), the weights of the
// zones that list the client are added up, and a total at or above the
// threshold blocks the client while a negative total marks it allow
// listed. Every zone is asked at once, bounded by one timeout, so that
// the lookups run while the client waits for the greeting (Start), and
// the verdict is read when it is needed (Lookup.Wait).
//
// Answers are only trusted inside 127.0.0.0/8 (RFC 5782 §2.1); the
// 127.255.255.0/24 answers some lists give for errors ("you query through
// a public resolver", "query refused") are ignored, as is an answer
// outside 127/8 (a wildcard or a hijacking resolver). A lookup that fails
// or times out does not list the client: a broken list must not block
// mail. Answers are cached by their TTL in the Resolver given (a
// dns.Cache).
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"smtpkit/internal/dns"
)

// Resolver is what the lookups need: A records for the list entry
// (RFC 5782 §2.1; no AAAA query, which lists do not answer) and its TXT
// record for the reason (§2.1.1). A dns.Cache (answers kept for their
// TTL) is one, and a dns.Client.
type Resolver interface {
	LookupA(ctx context.Context, host string) (dns.IPAnswer, error)
	LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error)
}

// DefaultTimeout bounds all the lookups of one client (postscreen's
// postscreen_dnsbl_timeout is 10s too).
const DefaultTimeout = 10 * time.Second

// Zone is one list, or one part of a list: a zone may be given more than
// once with different Answers and weights (a combined list's sub-lists,
// as postscreen's "zen.example=127.0.0.[10;11]*-1"); it is still asked
// once per client.
type Zone struct {
	// Name is the list's zone, e.g. "zen.spamhaus.org".
	Name string
	// Weight is added to the client's score when the zone lists it;
	// negative for an allow list (DNSWL). Zero is taken as 1.
	Weight int
	// Answers, when not empty, are the answers that count as a listing
	// (addresses or prefixes inside 127.0.0.0/8, e.g. 127.0.0.2 or
	// 127.0.0.0/29); other answers are ignored. Empty: any answer in
	// 127.0.0.0/8 but the error range counts.
	Answers []netip.Prefix
}

// Options configure a Checker.
type Options struct {
	Zones []Zone
	// Threshold is the score at which a client is blocked; at least 1
	// (0 is taken as 1).
	Threshold int
	Resolver  Resolver
	// Timeout bounds the lookups of one client (0: DefaultTimeout).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Checker asks the configured lists. It is safe for concurrent use and
// keeps nothing between clients but what its Resolver caches.
type Checker struct {
	opts Options
	// names are the distinct zone names, each asked once per client;
	// nameOf maps an entry of opts.Zones to its name.
	names  []string
	nameOf []int
	// inFlight merges concurrent lookups of one name (flight.go).
	inFlight flights
}

// New checks opts and returns a Checker.
func New(opts Options) (*Checker, error) {
	if opts.Resolver == nil {
		return nil, errors.New("dnsbl: no resolver")
	}
	if len(opts.Zones) == 0 {
		return nil, errors.New("dnsbl: no zones")
	}
	zones := make([]Zone, len(opts.Zones))
	for i, z := range opts.Zones {
		z.Name = strings.ToLower(strings.TrimSuffix(z.Name, "."))
		if z.Name == "" {
			return nil, fmt.Errorf("dnsbl: zone %d has no name", i)
		}
		if z.Weight == 0 {
			z.Weight = 1
		}
		for _, p := range z.Answers {
			if !loopback.Contains(p.Addr()) || !p.Addr().Is4() {
				return nil, fmt.Errorf("dnsbl: zone %s: answer %s is not in 127.0.0.0/8 (RFC 5782 §2.1)", z.Name, p)
			}
		}
		zones[i] = z
	}
	opts.Zones = zones
	c := &Checker{nameOf: make([]int, len(zones))}
	index := map[string]int{}
	for i, z := range zones {
		n, ok := index[z.Name]
		if !ok {
			n = len(c.names)
			index[z.Name] = n
			c.names = append(c.names, z.Name)
		}
		c.nameOf[i] = n
	}
	if opts.Threshold <= 0 {
		opts.Threshold = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c.opts = opts
	return c, nil
}

// Zones reports the zone names asked, each once, in configuration order.
func (c *Checker) Zones() []string { return append([]string(nil), c.names...) }
