// Package authres verifies incoming mail and writes down what it found:
// SPF (RFC 7208) for the MAIL FROM and HELO identities, DKIM (RFC 6376) for
// every signature up to a cap, DMARC (RFC 7489) for the From domain, iprev
// (RFC 8601 §3), and the Authentication-Results header field (RFC 8601)
// that carries the results.
//
// A Verifier is made once; each message gets a Check. Begin starts the
// checks that need only the connection and the envelope (SPF, iprev) at
// once, in the background; Write is fed the message while it is received
// and verifies DKIM signatures on the fly; Finish waits for everything and
// evaluates DMARC. DNS failures give temperror, never a rejection: what to
// do with a result is the caller's decision.
//
// The library work is done by go-msgauth (DKIM verification, DMARC record
// parsing, Authentication-Results formatting), blitiri.com.ar/go/spf (SPF
// evaluation, through an adapter onto internal/dns) and x/net/publicsuffix
// (organizational domains); this package wires them to one DNS resolver and
// one time budget, and implements DMARC alignment and policy selection.
package authres

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"smtpkit/internal/dns"
)

// Defaults for Options.
const (
	DefaultMaxSignatures = 5
	DefaultTimeout       = 20 * time.Second
)

// Options configures a Verifier.
type Options struct {
	// Resolver backs SPF, DKIM key and DMARC record lookups. When it also
	// implements dns.PTRResolver (dns.Client and dns.Cache do), iprev and
	// SPF's ptr mechanism use it; otherwise iprev is not checked. Unless
	// it is a *dns.Cache already, New puts one in front of it, so that
	// answers are kept for their TTLs across messages.
	Resolver dns.Resolver
	// AuthServID is our authserv-id (RFC 8601 §2.5); "" means the host
	// name.
	AuthServID string
	// MaxSignatures bounds the DKIM signatures verified per message
	// (0: DefaultMaxSignatures). Further signatures get result "policy"
	// and are not checked (RFC 6376 §6.1 lets a verifier limit its work).
	MaxSignatures int
	// Timeout bounds the DNS work of each phase of one message: the
	// envelope checks from Begin, the DKIM and DMARC lookups from the end
	// of the header section (0: DefaultTimeout).
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock of the DNS cache (nil: time.Now).
	Now func() time.Time
}

// Verifier checks messages. It is safe for concurrent use.
type Verifier struct {
	res     dns.Resolver
	ptr     dns.PTRResolver // nil: no iprev
	id      string
	maxSigs int
	timeout time.Duration
	log     *slog.Logger
	intn    func(n int) int // random in [0, n), for pct=
}

// New returns a Verifier for opts.
func New(opts Options) *Verifier {
	res := opts.Resolver
	if _, cached := res.(*dns.Cache); !cached && res != nil {
		res = dns.NewCache(res, dns.CacheOptions{Now: opts.Now})
	}
	v := &Verifier{
		res:     res,
		id:      opts.AuthServID,
		maxSigs: opts.MaxSignatures,
		timeout: opts.Timeout,
		log:     opts.Logger,
		intn:    rand.IntN,
	}
	if _, ok := opts.Resolver.(dns.PTRResolver); ok {
		v.ptr, _ = res.(dns.PTRResolver)
	}
	if v.id == "" {
		v.id, _ = os.Hostname()
	}
	if v.id == "" {
		v.id = "localhost"
	}
	if v.maxSigs <= 0 {
		v.maxSigs = DefaultMaxSignatures
	}
	if v.timeout <= 0 {
		v.timeout = DefaultTimeout
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v
}

// AuthServID returns the authserv-id the Verifier writes.
func (v *Verifier) AuthServID() string { return v.id }

// Result is everything one message's checks found.
type Result struct {
	// Header is the complete Authentication-Results field, folded, ending
	// in CRLF: "Authentication-Results: <id>;\r\n\tspf=…;\r\n\tdkim=…\r\n",
	// always one resinfo (method=result and its properties) per
	// continuation line, every one but the last ending in ";".
	Header string
	// SPF is the result for the MAIL FROM identity (RFC 7208 §2.4; for the
	// null sender, postmaster@HELO), HeloSPF for the HELO identity (§2.3):
	// pass fail softfail neutral none temperror permerror.
	SPF, HeloSPF string
	// SPFDomain is the domain SPF checked for the MAIL FROM identity: the
	// MAIL FROM domain, or the HELO name for the null sender.
	SPFDomain string
	// DKIM has one entry per DKIM-Signature field, in header order.
	DKIM []DKIMResult
	// IPRev is the iprev result (RFC 8601 §3): pass fail temperror
	// permerror, "" when not checked.
	IPRev string
	// IPRevName is the forward-confirmed name when IPRev is pass.
	IPRevName string
	DMARC     DMARC
	// FromDomain is the RFC 5322.From domain, lower case ("" when the
	// message has no usable From).
	FromDomain string
	IP         netip.Addr
}

// DKIMResult is the outcome for one signature.
type DKIMResult struct {
	Domain    string // d=, lower case
	Selector  string // s=
	Algorithm string // a=
	// Result is pass fail neutral temperror permerror policy (RFC 8601
	// §2.7.1); policy: beyond Options.MaxSignatures, not checked.
	Result string
	Reason string // why, when not pass
}

// DMARC is the DMARC evaluation of the message (RFC 7489 §6.6).
type DMARC struct {
	// Result is pass fail none temperror permerror.
	Result string
	// Policy is the policy requested for this message: none quarantine
	// reject (p=, or sp= for a subdomain of the organizational domain);
	// "" when no record applied.
	Policy string
	// Domain is the domain whose record applied: the From domain or its
	// organizational domain.
	Domain string
	// Sampled reports that the message falls within pct= (RFC 7489
	// §6.6.4): the policy should be applied to it.
	Sampled                 bool
	SPFAligned, DKIMAligned bool
	// Record is the record as published, for reports.
	Record string
	// Reason says why, for a result other than pass (free text).
	Reason string
}
