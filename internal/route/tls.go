package route

import "smtpkit/internal/tlspolicy"

// TLSRoute is what the static route says about TLS, in the form
// tlspolicy.Decide takes it: its own policy, if it names one, and whether it
// logs in to the relay. Delivery and the probe both build their plans from
// it, so that they cannot differ. A nil route (an MX or literal hop) gives
// nil.
func (s *Static) TLSRoute() *tlspolicy.Route {
	if s == nil {
		return nil
	}
	return &tlspolicy.Route{Domain: s.Domain, HasPolicy: s.TLSSet, Policy: s.TLS, Auth: s.AuthUser != ""}
}
