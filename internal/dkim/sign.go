// Package dkim signs outgoing mail with DKIM (RFC 6376), on
// github.com/emersion/go-msgauth/dkim: the keys are chosen by the
// message's From domain, every key of that domain signs (an Ed25519-SHA256
// signature, RFC 8463, beside an RSA-SHA256 one is the usual pair), with
// relaxed/relaxed canonicalization and the header fields of fields.go.
//
// The signature is made once, while the message streams into the queue
// (Begin, Write, Finish); the queue keeps the DKIM-Signature fields and
// prepends them to the message on every delivery attempt. Sign does the
// same for a message held in memory (DSNs, TLS-RPT reports). A message
// delivery converts to 7 bit is signed again (Own, BeginWith: resign.go).
//
// Canonicalization and hashing are go-msgauth's; this package chooses the
// keys and the h= list, and reads only as much of the header as that needs.
package dkim

import (
	"crypto"
	"errors"
	"fmt"
	"sort"
	"strings"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// Key is one signing key: d= Domain, s= Selector.
type Key struct {
	Domain   string // lower case, no trailing dot
	Selector string
	Signer   crypto.Signer // ed25519.PrivateKey or *rsa.PrivateKey
	// Subdomains: also sign for From domains under Domain.
	Subdomains bool
}

// Signer holds the configured keys. It is immutable and safe for
// concurrent use.
type Signer struct {
	keys []Key
}

// MaxHeader bounds the header section a Message holds in memory before it
// knows the From domain; a longer header is not signed. The server's
// limits.header_size (default 1 MiB) refuses such messages first.
const MaxHeader = 1 << 20

// New checks keys and returns their Signer. Keys are signed with in the
// order given.
func New(keys []Key) (*Signer, error) {
	s := &Signer{}
	for _, k := range keys {
		if k.Domain == "" || k.Selector == "" || k.Signer == nil {
			return nil, fmt.Errorf("dkim: key %q for %q: incomplete", k.Selector, k.Domain)
		}
		k.Domain = strings.ToLower(strings.TrimSuffix(k.Domain, "."))
		// NewSigner's checks (key type, options) now rather than per message.
		sg, err := msgauth.NewSigner(options(k, []string{"From"}))
		if err != nil {
			return nil, fmt.Errorf("dkim: key %q for %q: %w", k.Selector, k.Domain, err)
		}
		sg.Close() // ends its goroutine (an empty message: an error, ignored)
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// KeysFor returns the keys that sign mail from domain: those of domain
// itself, or else those of its nearest parent whose keys have Subdomains.
func (s *Signer) KeysFor(domain string) []Key {
	if s == nil {
		return nil
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	var best []Key
	bestLen := -1
	for _, k := range s.keys {
		ok := k.Domain == domain || (k.Subdomains && strings.HasSuffix(domain, "."+k.Domain))
		switch {
		case !ok || len(k.Domain) < bestLen:
		case len(k.Domain) > bestLen:
			best, bestLen = []Key{k}, len(k.Domain)
		default:
			best = append(best, k)
		}
	}
	return best
}

// Domains lists the signing domains, sorted, for logs.
func (s *Signer) Domains() []string {
	seen := map[string]bool{}
	var ds []string
	for _, k := range s.keys {
		if !seen[k.Domain] {
			seen[k.Domain] = true
			ds = append(ds, k.Domain)
		}
	}
	sort.Strings(ds)
	return ds
}

func options(k Key, headerKeys []string) *msgauth.SignOptions {
	return &msgauth.SignOptions{
		Domain:                 k.Domain,
		Selector:               k.Selector,
		Signer:                 k.Signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys,
	}
}

// Sign returns the DKIM-Signature fields for msg, a whole message (CRLF
// lines), or "" when no key signs it (Message.Finish).
func (s *Signer) Sign(msg []byte) (string, error) {
	m := s.Begin()
	m.Write(msg)
	return m.Finish()
}

// ErrNotSigned is wrapped by Skipped's reason when a message was not
// signed because of what it is (no key for its From domain, no usable
// From, an oversized header).
var ErrNotSigned = errors.New("dkim: not signed")

// Message signs one message as it streams: Write the whole message, then
// Finish (or Abort). It holds at most MaxHeader bytes.
type Message struct {
	s       *Signer
	head    []byte // the header while it has not ended
	signers []*msgauth.Signer
	done    bool   // the header was decided on
	skipped error  // why the message is not signed
	err     error  // a signer failed
	owner   string // BeginFor's domain
	bound   bool   // the From domain must be related to owner
	fixed   []Key  // BeginWith's keys, used whatever the From domain
}

// Begin starts signing a message.
func (s *Signer) Begin() *Message { return &Message{s: s} }

// BeginFor starts signing a message whose From domain must be related to
// domain — the same, a subdomain or a parent, the relation DMARC's
// relaxed alignment (RFC 7489 §3.1) is made of. The submission path gives
// the envelope sender's domain, which was checked against the account:
// without this any authenticated user could have mail signed for every
// domain we hold a key for. A message whose From is elsewhere is not
// signed (Skipped says why).
func (s *Signer) BeginFor(domain string) *Message {
	return &Message{s: s, owner: strings.ToLower(strings.TrimSuffix(domain, ".")), bound: true}
}

// related reports whether a and b are the same domain or one is a
// subdomain of the other.
func related(a, b string) bool {
	return a == b || strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a)
}

// Write takes the next bytes of the message. It never fails: a failure
// is kept for Finish, and the message itself is not affected.
func (m *Message) Write(p []byte) (int, error) {
	if m.err != nil || m.skipped != nil {
		return len(p), nil
	}
	if !m.done {
		from := max(0, len(m.head)-3) // the empty line may straddle two writes
		m.head = append(m.head, p...)
		end := headerEnd(m.head, from)
		if end < 0 || end > MaxHeader {
			if len(m.head) > MaxHeader {
				m.skip(fmt.Errorf("%w: header over %d bytes", ErrNotSigned, MaxHeader))
			}
			return len(p), nil
		}
		m.start(m.head[:end])
		m.feed(m.head)
		m.head = nil
		return len(p), nil
	}
	m.feed(p)
	return len(p), nil
}

// start chooses the keys for header h and starts their signers.
func (m *Message) start(h []byte) {
	m.done = true
	fs := parseHeader(h)
	if m.fixed != nil {
		m.startKeys(m.fixed, headerKeys(fs))
		return
	}
	domain, err := fromDomain(fs)
	if err != nil {
		m.skip(fmt.Errorf("%w: %v", ErrNotSigned, err))
		return
	}
	if m.bound && (m.owner == "" || !related(strings.ToLower(domain), m.owner)) {
		m.skip(fmt.Errorf("%w: From domain %q is not the sender's (%q)", ErrNotSigned, domain, m.owner))
		return
	}
	keys := m.s.KeysFor(domain)
	if len(keys) == 0 {
		m.skip(fmt.Errorf("%w: no key for %q", ErrNotSigned, domain))
		return
	}
	m.startKeys(keys, headerKeys(fs))
}

// startKeys starts a signer for each of keys over the fields hk.
func (m *Message) startKeys(keys []Key, hk []string) {
	for _, k := range keys {
		sg, err := msgauth.NewSigner(options(k, hk))
		if err != nil {
			m.fail(err)
			return
		}
		m.signers = append(m.signers, sg)
	}
}

func (m *Message) feed(p []byte) {
	for _, sg := range m.signers {
		if _, err := sg.Write(p); err != nil {
			m.fail(err)
			return
		}
	}
}

func (m *Message) skip(reason error) {
	m.skipped = reason
	m.head = nil
}

func (m *Message) fail(err error) {
	if m.err == nil {
		m.err = fmt.Errorf("dkim: signing: %w", err)
	}
	m.close()
}

// close ends the signers (their goroutines finish reading).
func (m *Message) close() {
	for _, sg := range m.signers {
		sg.Close()
	}
	m.signers = nil
}

// Finish returns the DKIM-Signature header fields to prepend to the
// message, one per key in configuration order, each ending in CRLF; ""
// when the message is not signed (see Skipped). An error means signing
// failed although a key applied.
func (m *Message) Finish() (string, error) {
	if !m.done && m.err == nil && m.skipped == nil {
		// A message that is all header (RFC 5322 §2.1: the body is
		// optional): its body is empty.
		m.head = append(m.head, "\r\n"...)
		if end := headerEnd(m.head, 0); end >= 0 {
			m.start(m.head[:end])
			m.feed(m.head)
		}
		m.head = nil
	}
	if m.err != nil {
		return "", m.err
	}
	if m.skipped != nil || len(m.signers) == 0 {
		if m.skipped == nil {
			m.skipped = fmt.Errorf("%w: no header", ErrNotSigned)
		}
		return "", nil
	}
	var b strings.Builder
	for _, sg := range m.signers {
		if err := sg.Close(); err != nil {
			m.fail(err)
			return "", m.err
		}
		b.WriteString(sg.Signature())
	}
	m.signers = nil
	return b.String(), nil
}

// Skipped is why Finish returned no signature (it wraps ErrNotSigned), or
// nil.
func (m *Message) Skipped() error { return m.skipped }

// Abort ends an unfinished message.
func (m *Message) Abort() {
	m.close()
	m.head = nil
}
