package probe

import (
	"fmt"
	"strings"

	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// tlsDeferReason says why delivery under plan would defer at an address
// that answered (tlspolicy's OnFailure: a plan's requirement that the
// server did not meet), "" when the plan is met: no TLS where the plan
// requires it, or a certificate the plan verifies that is not valid.
func tlsDeferReason(r Result, plan tlspolicy.Plan) string {
	switch {
	case plan.Require && r.TLS == nil:
		return "the plan requires TLS and none was negotiated"
	case len(plan.DANE) > 0 && r.TLSA != nil && !r.TLSA.Matches:
		return "the certificate matches none of the TLSA records (" + r.TLSA.Error + ")"
	case plan.VerifyName != "" && r.TLS != nil && !r.TLS.Valid:
		return "the certificate is not valid for " + plan.VerifyName + ", as the plan requires"
	}
	return ""
}

// deferReason says why delivery under plan would not get through at the
// address r probed, "" when it would.
func deferReason(r Result, plan tlspolicy.Plan) string {
	switch {
	case !r.Connected:
		return r.Error
	case r.Error != "":
		return "the probe failed: " + r.Error
	}
	return tlsDeferReason(r, plan)
}

// judge sets the hop's verdict from the probes of its addresses (in the
// order tried) under the hop's plan: deliverable when one address would
// take the mail, and how; else why every address would defer.
func (h *HopInfo) judge(rs []Result, plan tlspolicy.Plan) {
	h.judgeRequireTLS(rs)
	if h.MTASTSMatch != nil {
		valid, tried := true, false
		for _, r := range rs {
			if r.TLS != nil {
				tried, valid = true, valid && r.TLS.Valid
			}
		}
		if tried {
			h.MTASTSWebPKI = &valid
		}
	}
	enforced := enforcedBy(plan)
	if plan.Refuse != nil {
		// The courier does not connect at all; the probe did, to show.
		h.Verdict = "not tried: " + plan.Refuse.Reply.OneLine()
		h.EnforcedTLSFails = enforced
		return
	}
	var good *Result
	var failed []string
	for i := range rs {
		if enforced && rs[i].Connected && tlsDeferReason(rs[i], plan) != "" {
			h.EnforcedTLSFails = true
		}
		why := deferReason(rs[i], plan)
		if why == "" {
			if good == nil {
				good = &rs[i]
			}
			continue
		}
		failed = append(failed, rs[i].IP+": "+why)
	}
	if good == nil {
		h.Verdict = "would defer: " + strings.Join(failed, "; ")
		return
	}
	h.Deliverable = true
	h.Verdict = "deliverable " + how(*good, plan)
	if len(failed) > 0 {
		h.Verdict += fmt.Sprintf(" at %s; %d of %d addresses would defer (%s)", good.IP, len(failed), len(rs), strings.Join(failed, "; "))
	}
}

// judgeRequireTLS says what delivery would do with a REQUIRETLS message
// here (RFC 8689 §4.2.1): the hop's plan for such a message must not
// refuse it (the name must be authenticated), an address must meet that
// plan and offer REQUIRETLS over TLS (internal/client refuses otherwise).
func (h *HopInfo) judgeRequireTLS(rs []Result) {
	plan := h.requireTLS
	if plan.Refuse != nil {
		h.RequireTLS = "bounced: " + plan.Refuse.Reply.OneLine()
		return
	}
	why := "no address answered"
	for _, r := range rs {
		switch {
		case deferReason(r, plan) != "":
			why = deferReason(r, plan)
		case !r.RequireTLSOffered:
			why = "the server does not offer REQUIRETLS over TLS (" + string(smtp.EnhRequireTLS) + ")"
		default:
			h.RequireTLS = "relayed"
			return
		}
	}
	h.RequireTLS = "bounced or deferred: " + why
}

// enforcedBy reports whether the plan's TLS is enforced by the domain
// itself: DANE (any plan it decided: matched records, TLS without
// authentication, or a refusal after a failed TLSA lookup), or an MTA-STS
// policy in enforce mode (a certificate to verify, or an MX refused). An
// MTA-STS testing policy enforces nothing.
func enforcedBy(plan tlspolicy.Plan) bool {
	switch plan.Mechanism {
	case tlspolicy.MechDANE:
		return true
	case tlspolicy.MechSTS:
		return plan.Refuse != nil || plan.VerifyName != ""
	}
	return false
}

// how words the transport an address that takes the mail would give.
func how(r Result, plan tlspolicy.Plan) string {
	switch {
	case r.TLS == nil && !plan.UsesTLS():
		return "in plaintext: the plan uses no TLS"
	case r.TLS == nil:
		return "in plaintext: STARTTLS not offered or refused, and the plan does not require TLS"
	case len(plan.DANE) > 0:
		return "over " + r.TLS.Version + ", certificate matches a TLSA record (DANE)"
	case plan.VerifyName != "":
		return "over " + r.TLS.Version + ", certificate verified for " + plan.VerifyName
	case r.TLS.Valid:
		// The probe checked the chain (system roots or --ca) and the name
		// though the plan accepts any certificate: say what it found.
		return "over " + r.TLS.Version + ", certificate valid (the probe verified it; the plan accepts any)"
	}
	return "over " + r.TLS.Version + ", certificate not verified (encrypted, not authenticated)"
}
