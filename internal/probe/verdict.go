package probe

import (
	"fmt"
	"strings"

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
	var good *Result
	var failed []string
	for i := range rs {
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

// how words the transport an address that takes the mail would give.
func how(r Result, plan tlspolicy.Plan) string {
	switch {
	case r.TLS == nil && !plan.UsesTLS():
		return "in plaintext: the plan uses no TLS"
	case r.TLS == nil:
		return "in plaintext: STARTTLS not offered or refused, and the plan does not require TLS"
	case plan.VerifyName != "":
		return "over " + r.TLS.Version + ", certificate verified for " + plan.VerifyName
	}
	return "over " + r.TLS.Version + ", certificate not verified (encrypted, not authenticated)"
}
