package tlsrpt

import "net/netip"

// Session is what delivery reports for every outbound SMTP session that
// got past connect, whether TLS was established as the policy asked or
// not (RFC 8460 §4.1: "successful" and "failure" session counts). The
// Store counts it under Domain and the UTC day it was recorded.
type Session struct {
	Domain      string     // policy domain: the recipient domain (lower case, A-labels)
	Policy      PolicyType // tlsa, sts or no-policy-found ("" counts as no-policy-found)
	Strings     []string   // policy-string: STS policy lines, or TLSA records "3 1 1 ab…"
	MXHost      string     // receiving-mx-hostname
	ReceivingIP netip.Addr // receiving-ip
	SendingIP   netip.Addr // our local address, if known (sending-mta-ip)
	Result      ResultType // "" = success
	// Detail says more about a failure, in words. The report carries it
	// as "failure-reason-code", the free-text field of RFC 8460 §4.4
	// ("additional-information" must be a URI there).
	Detail string
}

// Recorder takes the sessions delivery reports. Store implements it;
// delivery.RemoteOptions has a field of this type (nil: nothing counted).
type Recorder interface{ Record(Session) }
