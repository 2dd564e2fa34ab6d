// Package srs is the Sender Rewriting Scheme for forwarded mail, in the
// form of Shevek's SRS paper and libsrs2 (an Internet-Draft that never
// became an RFC). A forwarder that relays mail for alice@example.org to
// another domain sends it from an address of its own, so that SPF (RFC
// 7208) at the destination checks the forwarder's IP against the
// forwarder's domain, and a bounce comes back to the forwarder, which
// alone can decode it:
//
//	SRS0=HHHHHH=TT=example.org=alice@forwarder.example
//	SRS1=HHHHHH=first.example==HHHH=TT=example.org=alice@forwarder.example
//
// SRS0 carries the original domain and local part, a timestamp TT (days,
// two base32 characters, modulo 1024) and a keyed hash HHHHHH over both.
// SRS1 is what a second forwarder makes of a first one's SRS0 address: it
// keeps the first forwarder's domain and the rest of its SRS0 address
// (which only the first forwarder can verify) under a hash of its own;
// the bounce to it goes back to the first forwarder.
//
// Choices where the scheme leaves room (docs/authentication.md):
//   - The hash is HMAC-SHA256 truncated to 30 bits and written as six
//     characters of RFC 4648 base32: an alphabet without case, so an
//     address whose local part a relay case-folded still verifies. The
//     hashed fields are lower-cased for the same reason.
//   - The key is derived from the installation secret (<data_dir>/secret)
//     with its own label, so no separate key file exists and the SCRAM
//     decoys keyed by the same secret are unrelated to it.
//   - A timestamp is valid for MaxAge (21 days by default); one from the
//     future is treated as one that wrapped, i.e. expired.
//
// The package only rewrites and checks addresses; internal/inbound decides
// which envelopes are rewritten and where a verified bounce goes.
package srs

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"time"

	"smtpkit/internal/smtp"
)

// DefaultMaxAge is how long an SRS address stays valid when Options.MaxAge
// is zero: long enough for a queue's retries and a late bounce.
const DefaultMaxAge = 21 * 24 * time.Hour

// keyLabel separates the SRS key from every other use of the installation
// secret.
const keyLabel = "smtpkit srs hash key v1\x00"

// Errors of Parse and Reverse; test with errors.Is.
var (
	// ErrMalformed: not an SRS address, or one whose fields are broken.
	ErrMalformed = errors.New("srs: malformed SRS address")
	// ErrForged: the hash does not match (not made with our key).
	ErrForged = errors.New("srs: SRS address hash does not verify")
	// ErrExpired: the hash matches but the timestamp is older than MaxAge.
	ErrExpired = errors.New("srs: SRS address has expired")
	// ErrTooLong: the rewritten local part would exceed the 64 octets of
	// RFC 5321 §4.5.3.1.1, which receivers (smtpkit among them) enforce.
	ErrTooLong = errors.New("srs: rewritten address exceeds 64 octets")
)

// Options configure a Rewriter.
type Options struct {
	// Secret is the installation secret (userdb.LoadSecret); the hash key
	// is derived from it. Required.
	Secret []byte
	// Domain is ours: rewritten senders are addresses in it, and bounces
	// to SRS addresses in it are decoded. Required.
	Domain string
	// MaxAge is how long an SRS0 address verifies; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Rewriter makes and checks SRS addresses in one domain with one key. It
// is immutable and safe for concurrent use.
type Rewriter struct {
	key    []byte
	domain string
	maxAge int // days
	now    func() time.Time
}

// New returns a Rewriter for opts.
func New(opts Options) (*Rewriter, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("srs: no secret")
	}
	if opts.Domain == "" {
		return nil, errors.New("srs: no domain")
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultMaxAge
	}
	days := int(opts.MaxAge / (24 * time.Hour))
	if days < 1 || days >= stampModulo {
		return nil, errors.New("srs: max age must be between 1 and 1023 days")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := hmac.New(sha256.New, opts.Secret)
	io.WriteString(m, keyLabel)
	return &Rewriter{key: m.Sum(nil), domain: opts.Domain, maxAge: days, now: opts.Now}, nil
}

// Domain is the SRS domain.
func (r *Rewriter) Domain() string { return r.domain }

// Mine reports whether addr is an SRS address in our domain (by its form
// only: Reverse verifies it).
func (r *Rewriter) Mine(addr smtp.Address) bool {
	return strings.EqualFold(addr.Domain, r.domain) && HasPrefix(addr.Local)
}

// Forward returns the envelope sender to use when forwarding mail from
// sender: SRS0 in our domain for an ordinary address, SRS1 for another
// forwarder's SRS0 (or SRS1) address. The null sender and addresses
// already in our domain are returned unchanged (bounces stay "<>"; our own
// addresses need no rewriting).
func (r *Rewriter) Forward(sender smtp.Address) (smtp.Address, error) {
	if sender.IsNull() || strings.EqualFold(sender.Domain, r.domain) {
		return sender, nil
	}
	var a Address
	p, err := parse(sender.Local, foreignHash)
	switch {
	case err == nil && p.Kind == SRS1:
		// Already a second-hop address: keep its first forwarder.
		a = Address{Kind: SRS1, Domain: p.Domain, Local: p.Local}
	case HasPrefix(sender.Local) && sender.Local[3] == '0':
		// Another forwarder's SRS0 (only its key verifies the rest):
		// SRS1 pointing back to it, as libsrs2 does.
		a = Address{Kind: SRS1, Domain: sender.Domain, Local: "SRS0" + sender.Local[4:]}
	default:
		a = Address{Kind: SRS0, Stamp: stamp(r.now()), Domain: sender.Domain, Local: sender.Local}
	}
	a.Hash = r.hash(a)
	local := a.LocalPart()
	if len(smtp.Address{Local: local, Domain: r.domain}.String()) > len(r.domain)+1+smtp.MaxLocalPartLen {
		return smtp.Address{}, ErrTooLong
	}
	return smtp.Address{Local: local, Domain: r.domain}, nil
}

// Reverse decodes an SRS address in our domain: for SRS0 the original
// sender, for SRS1 the first forwarder's SRS0 address. It fails with
// ErrMalformed (also for an address not in our domain), ErrForged or
// ErrExpired.
func (r *Rewriter) Reverse(addr smtp.Address) (smtp.Address, error) {
	if !strings.EqualFold(addr.Domain, r.domain) {
		return smtp.Address{}, ErrMalformed
	}
	a, err := Parse(addr.Local)
	if err != nil {
		return smtp.Address{}, err
	}
	if !hmac.Equal([]byte(strings.ToUpper(a.Hash)), []byte(r.hash(a))) {
		return smtp.Address{}, ErrForged
	}
	if a.Kind == SRS0 && !r.fresh(a.Stamp) {
		return smtp.Address{}, ErrExpired
	}
	orig := smtp.Address{Local: a.Local, Domain: a.Domain}
	if _, err := smtp.ParseAddress(orig.String()); err != nil {
		return smtp.Address{}, ErrMalformed
	}
	return orig, nil
}

// hash is the keyed hash of a's fields (not its Hash), base32, upper case.
func (r *Rewriter) hash(a Address) string {
	m := hmac.New(sha256.New, r.key)
	if a.Kind == SRS0 {
		io.WriteString(m, "0\x00"+strings.ToUpper(a.Stamp)+"\x00")
	} else {
		io.WriteString(m, "1\x00")
	}
	io.WriteString(m, strings.ToLower(a.Domain)+"\x00"+strings.ToLower(a.Local))
	return encodeHash(m.Sum(nil))
}

// fresh reports whether the timestamp s is at most maxAge days old; s has
// passed Parse. RFC-less, as libsrs2: the day count wraps at 1024, and a
// stamp "from the future" is one that wrapped long ago.
func (r *Rewriter) fresh(s string) bool {
	then, _ := decodeStamp(s)
	now := dayNumber(r.now())
	age := (now - then + stampModulo) % stampModulo
	return age <= r.maxAge
}
