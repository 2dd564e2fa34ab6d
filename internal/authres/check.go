package authres

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"

	"smtpkit/internal/smtp"
)

// errFinished is returned by Write after Finish or Abort.
var errFinished = errors.New("authres: check already finished")

// Check is the verification of one message, from Begin to Finish or Abort.
// Write, Finish and Abort are called by one goroutine (the session's).
type Check struct {
	v        *Verifier
	ip       netip.Addr
	helo     string
	mailFrom smtp.Address

	ctx    context.Context // cancelled by Finish and Abort
	cancel context.CancelFunc

	env       chan struct{} // closed when the envelope checks are done
	spfDomain string
	spf       spfOutcome // written before env is closed
	heloSPF   spfOutcome
	iprev     iprevOutcome

	hdr  headerScan
	dkim *dkimRun // started by the first Write

	once   sync.Once
	ended  bool
	result Result
}

// Begin starts the checks that need no message, concurrently and in the
// background: SPF for the MAIL FROM identity (postmaster@HELO for the null
// sender, RFC 7208 §2.4) and for the HELO name (§2.3), and iprev (RFC 8601
// §3), within Options.Timeout. ip is the client's address, helo the name
// it gave in HELO/EHLO.
func (v *Verifier) Begin(ctx context.Context, ip netip.Addr, helo string, mailFrom smtp.Address) *Check {
	ip = ip.Unmap()
	helo = strings.TrimSuffix(helo, ".")
	c := &Check{v: v, ip: ip, helo: helo, mailFrom: mailFrom, env: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sender, domain := mailFrom.String(), mailFrom.DomainLower()
	if mailFrom.IsNull() {
		sender, domain = "postmaster@"+helo, strings.ToLower(helo)
	}
	c.spfDomain = domain
	envCtx, envCancel := context.WithTimeout(c.ctx, v.timeout)
	var wg sync.WaitGroup
	wg.Go(func() {
		if domain == "" || strings.HasPrefix(domain, "[") {
			c.spf = spfOutcome{result: "none", reason: "no domain to check"}
			return
		}
		c.spf = v.checkSPF(envCtx, ip, helo, sender)
	})
	wg.Go(func() {
		if !heloIdentity(helo) {
			c.heloSPF = spfOutcome{result: "none", reason: "HELO is not a domain name"}
			return
		}
		c.heloSPF = v.checkSPF(envCtx, ip, helo, "postmaster@"+helo)
	})
	if v.ptr != nil {
		wg.Go(func() { c.iprev = v.checkIPRev(envCtx, ip) })
	}
	go func() {
		wg.Wait()
		envCancel()
		close(c.env)
	}()
	return c
}

// Write takes the message exactly as received: header and body, CRLF,
// after dot-unstuffing, without the Received field our server adds. DKIM
// verification runs concurrently while the message is written; Write
// copies p into a bounded buffer and waits only when the verifier is that
// far behind (at most until its key lookups time out).
func (c *Check) Write(p []byte) (int, error) {
	if c.ended {
		return 0, errFinished
	}
	c.hdr.feed(p)
	if c.dkim == nil {
		c.dkim = c.v.startDKIM(c.ctx)
	}
	c.dkim.write(p)
	return len(p), nil
}

// Finish waits for every check and evaluates DMARC (RFC 7489 §6.6). It may
// be called more than once and returns the same Result.
func (c *Check) Finish() Result {
	c.once.Do(func() {
		c.ended = true
		<-c.env
		msg := c.hdr.parse()
		var sigs []DKIMResult
		if c.dkim != nil {
			sigs = c.dkim.finish(msg.signatures, c.v.maxSigs)
		}
		r := Result{
			SPF:        c.spf.result,
			HeloSPF:    c.heloSPF.result,
			SPFDomain:  c.spfDomain,
			DKIM:       sigs,
			IPRev:      c.iprev.result,
			IPRevName:  c.iprev.name,
			FromDomain: msg.fromDomain,
			IP:         c.ip,
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.v.timeout)
		r.DMARC = c.v.evalDMARC(ctx, msg, r)
		cancel()
		r.Header = c.v.formatHeader(r, c)
		c.cancel()
		c.result = r
		c.v.log.Debug("authres", "remote", c.ip.String(), "spf", r.SPF, "spf_domain", r.SPFDomain,
			"helo_spf", r.HeloSPF, "iprev", r.IPRev, "dkim", len(r.DKIM), "from_domain", r.FromDomain,
			"dmarc", r.DMARC.Result, "dmarc_policy", r.DMARC.Policy)
	})
	return c.result
}

// Abort stops every check of a message that will not be accepted and waits
// for the goroutines to end (the cancelled lookups return at once).
func (c *Check) Abort() {
	c.once.Do(func() {
		c.ended = true
		c.cancel()
		if c.dkim != nil {
			c.dkim.abort()
		}
		<-c.env
	})
}
