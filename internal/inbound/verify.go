package inbound

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"smtpkit/internal/authres"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// Verification configures the checks of mail arriving on mx listeners
// ([verify], internal/authres): SPF, DKIM, DMARC and iprev, recorded in
// an Authentication-Results field at the top of every stored copy
// (RFC 8601), and, with Enforce, the sender domain's DMARC policy.
type Verification struct {
	// Begin starts the checks of one message (authres.Verifier.Begin).
	Begin func(ctx context.Context, ip netip.Addr, helo string, from smtp.Address) Check
	// IsOurs reports whether an Authentication-Results field value
	// carries our authserv-id (authres.IsOurs with it): such fields are
	// removed from arriving mail (RFC 8601 §5).
	IsOurs func(value string) bool
	// Enforce applies a failing message's DMARC policy where pct samples
	// it (RFC 7489 §6.6.4): p=reject is refused with 550 5.7.1 at the end
	// of DATA, p=quarantine goes to each mailbox's .Junk folder.
	Enforce bool
	// Omit lists the methods left out of the header (the [verify] keys
	// turned off: "spf", "dkim", "dmarc", "iprev").
	Omit []string
	// TmpDir holds a message larger than 64 KiB while it is verified
	// ("" = the system's temporary directory).
	TmpDir string
}

// Check is one message's verification (authres.Check): the message goes
// in as it is received, Finish gives the results.
type Check interface {
	io.Writer
	Finish() authres.Result
	Abort()
}

// DMARCRecorder collects DMARC evaluations for aggregate reports (RFC
// 7489 §7.2, internal/dmarcrpt).
type DMARCRecorder interface {
	// Record is called once for every message a DMARC record applied
	// to, with what was done with it: "none", "quarantine" or "reject".
	Record(r authres.Result, disposition string)
}

// DMARC dispositions (RFC 7489 §7.2 appendix C, DispositionType).
const (
	dispNone       = "none"
	dispQuarantine = "quarantine"
	dispReject     = "reject"
)

// verifies reports whether the message of env is verified: mail on mx
// from a client that did not authenticate and is not trusted. Submission
// mail is our own users', already checked against their accounts; a
// trusted client's is our own hosts' (trusted.go).
func (b *Backend) verifies(env *server.Envelope) bool {
	s := env.Session
	return b.opts.Verify != nil && s != nil && s.Role == server.RoleMX && !submitter(s)
}

// verifying wraps the fan-out w of env into a verifyingWriter.
func (b *Backend) verifying(ctx context.Context, env *server.Envelope, w server.MessageWriter) *verifyingWriter {
	v := b.opts.Verify
	s := env.Session
	check := v.Begin(ctx, remoteIP(s.Remote), s.Helo, env.From)
	vw := &verifyingWriter{
		out: w, check: check, opts: v, reports: b.opts.DMARCReports,
		held: &hold{dir: v.TmpDir, pool: &b.holds}, id: env.ID, log: b.opts.Logger,
	}
	vw.filter = newARFilter(vw.held, v.IsOurs)
	return vw
}

// remoteIP is the client's address, the zero Addr when unknown.
func remoteIP(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// verifyingWriter is the fan-out of a message under verification. The
// message is held (hold.go) while the checks run beside its reception;
// at Commit the Authentication-Results field is known and every copy is
// written once, with its final bytes, before the fan-out commits:
//
//	Return-Path (local copies only, local.Store.Begin)
//	Authentication-Results (ours)
//	Received (ours, the server's first Write)
//	the message, without Authentication-Results fields of our id
//
// The 250 still waits for the durable commit (writer.Commit).
type verifyingWriter struct {
	out     server.MessageWriter // the fan-out, or the milters in front of it (milterwriter.go)
	check   Check
	opts    *Verification
	reports DMARCRecorder
	held    *hold
	filter  *arFilter
	// greylist, when set, decides on the verified message before it is
	// stored (greylist.go).
	greylist func(authres.Result) error
	traced   bool   // the first Write, the server's Received field, is past
	id       string // the envelope id, for the log
	log      *slog.Logger
}

// Write holds p, without our Authentication-Results fields, and feeds
// the check. The server's first Write is its Received field
// (server.session.begin), which the check does not see: it wants the
// message as it arrived.
func (v *verifyingWriter) Write(p []byte) (int, error) {
	if _, err := v.filter.Write(p); err != nil {
		return 0, err
	}
	if v.traced {
		v.check.Write(p) // never fails before Finish
	}
	v.traced = true
	return len(p), nil
}

// Commit finishes the checks, applies the DMARC policy when enforced,
// writes the copies and commits them (writer.Commit).
func (v *verifyingWriter) Commit() (string, error) {
	defer v.held.Close()
	if err := v.filter.Flush(); err != nil {
		v.check.Abort()
		v.out.Abort()
		return "", err
	}
	r := v.check.Finish()
	disp := v.disposition(r)
	// A DMARC rejection is final; a greylisted message is not received
	// at all (it comes back), so it is neither stored nor reported.
	if v.greylist != nil && disp != dispReject {
		if err := v.greylist(r); err != nil {
			v.out.Abort()
			return "", err
		}
	}
	if r.DMARC.Domain != "" && v.reports != nil && !slices.Contains(v.opts.Omit, "dmarc") {
		v.reports.Record(r, disp)
	}
	log := v.log.With("spf", r.SPF, "dkim", dkimSummary(r.DKIM), "dmarc", r.DMARC.Result,
		"dmarc_policy", r.DMARC.Policy, "from_domain", r.FromDomain, "disposition", disp)
	if v.filter.removed > 0 {
		log = log.With("removed_authres", v.filter.removed)
	}
	switch disp {
	case dispReject:
		log.Info("dmarc: message refused", "msgid", v.id)
		v.out.Abort()
		return "", errDMARCReject(r.DMARC.Domain)
	case dispQuarantine:
		if err := quarantineLocal(v.out); err != nil {
			v.out.Abort()
			return "", err
		}
	}
	if err := v.writeCopies(omit(r.Header, v.opts.Omit)); err != nil {
		v.out.Abort()
		return "", err
	}
	id, err := v.out.Commit()
	if err == nil {
		log.Info("verified", "msgid", id)
	}
	return id, err
}

// writeCopies writes our Authentication-Results field and the held
// message into every copy.
func (v *verifyingWriter) writeCopies(header string) error {
	if _, err := io.WriteString(v.out, header); err != nil {
		return err
	}
	_, err := v.held.WriteTo(v.out)
	return err
}

// disposition is what the DMARC policy asks for r, when enforced: RFC
// 7489 §6.6.4, a failing message within pct gets the requested policy;
// none otherwise. A temperror is never a rejection (§6.6.3: the message
// is treated as if no record were published).
func (v *verifyingWriter) disposition(r authres.Result) string {
	if !v.opts.Enforce || r.DMARC.Result != "fail" || !r.DMARC.Sampled {
		return dispNone
	}
	switch r.DMARC.Policy {
	case dispReject:
		return dispReject
	case dispQuarantine:
		return dispQuarantine
	}
	return dispNone
}

func (v *verifyingWriter) Abort() {
	v.check.Abort()
	v.held.Close()
	v.out.Abort()
}

// dkimSummary is the DKIM results for the log, "pass,fail" say.
func dkimSummary(sigs []authres.DKIMResult) string {
	if len(sigs) == 0 {
		return "none"
	}
	r := make([]string, len(sigs))
	for i, s := range sigs {
		r[i] = s.Result
	}
	return strings.Join(r, ",")
}

// omit drops the results of the methods in methods from the
// Authentication-Results field header, one "method=result …" resinfo
// per continuation line as authres formats it.
func omit(header string, methods []string) string {
	if len(methods) == 0 {
		return header
	}
	lines := strings.Split(strings.TrimSuffix(header, "\r\n"), "\r\n")
	kept := lines[:1]
	for _, l := range lines[1:] {
		m, _, _ := strings.Cut(strings.TrimLeft(l, " \t"), "=")
		drop := false
		for _, o := range methods {
			drop = drop || strings.EqualFold(m, o)
		}
		if !drop {
			kept = append(kept, l)
		}
	}
	// Every resinfo but the last ends with ";".
	if last := len(kept) - 1; last >= 0 {
		kept[last] = strings.TrimSuffix(kept[last], ";")
	}
	if len(kept) == 1 {
		kept[0] += "; none" // RFC 8601 §2.2: no-result
	}
	return strings.Join(kept, "\r\n") + "\r\n"
}

var _ io.Writer = (*verifyingWriter)(nil)
