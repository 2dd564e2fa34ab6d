package probe

import "time"

// Report is the outcome of a run: one Result per probed port.
type Report struct {
	Results []Result `json:"results"`
	// Domains has one entry per DOMAIN target, in the order given: its
	// DNS records and one verdict per next hop. Absent without domains.
	Domains []Domain `json:"domains,omitempty"`
}

// Result is what one port showed. The JSON field names are a stable
// interface for monitoring (docs/probe.md); new fields may be added, none
// renamed or removed.
type Result struct {
	Host    string `json:"host"` // the host as given, or a domain's next hop (MX or route host)
	Port    int    `json:"port"`
	Address string `json:"address"` // host:port as dialled (for a domain: ip:port)
	// Domain is the mail domain probed ("" for a host target); Route the
	// static route its mail takes ("" for MX hops, whose preference is
	// Pref); IP the address of the hop dialled.
	Domain string `json:"domain,omitempty"`
	Route  string `json:"route,omitempty"`
	Pref   int    `json:"pref,omitempty"`
	IP     string `json:"ip,omitempty"`
	// Mode is how TLS was asked for: "starttls", "implicit" or "none".
	Mode string `json:"mode"`
	// Plan is the tlspolicy plan in words, as delivery would print it;
	// Mechanism what decided it (tlspolicy.Mechanism: "dane", "mta-sts",
	// "route", "default").
	Plan      string `json:"plan"`
	Mechanism string `json:"mechanism"`

	Connected bool   `json:"connected"`  // the TCP connection was established
	ConnectMS int64  `json:"connect_ms"` // time to establish it
	Banner    string `json:"banner"`     // the greeting, "220 ..." (lines joined by spaces)

	// Extensions are EHLO keywords with their parameters ("SIZE 1048576"),
	// in the server's order. Before TLS is empty for implicit TLS.
	EHLOBeforeTLS   []string `json:"ehlo_before_tls"`
	AuthBeforeTLS   []string `json:"auth_before_tls"` // SASL mechanisms offered in plaintext
	StartTLSOffered bool     `json:"starttls_offered"`
	TLS             *TLSInfo `json:"tls"` // nil: no TLS was negotiated
	EHLOAfterTLS    []string `json:"ehlo_after_tls"`
	AuthAfterTLS    []string `json:"auth_after_tls"`
	// RequireTLSOffered: REQUIRETLS (RFC 8689 §3) was in the EHLO reply
	// over TLS, so that a message sent with MAIL FROM ... REQUIRETLS
	// could be relayed here.
	RequireTLSOffered bool `json:"requiretls_offered"`
	// NoSNI is a second handshake without SNI, made when the first sent
	// one (nil otherwise): whether the server still presents a
	// certificate to a client that names no server.
	NoSNI *NoSNIInfo `json:"no_sni"`
	// TLSA is the certificate checked against the plan's TLSA records
	// (dane.Verify, as delivery does in the handshake); nil when the plan
	// has no DANE records or no TLS was negotiated.
	TLSA *TLSACheck `json:"tlsa"`
	// STSTesting is what an MTA-STS testing policy would report for this
	// session (the TLS-RPT result type and why, tlspolicy.Plan.Audit);
	// "" when the certificate passes or no testing policy applies.
	STSTesting string `json:"mta_sts_testing,omitempty"`
	// HopAuthentic: the answers this domain hop comes from (the MX answer
	// and the host's addresses) were DNSSEC-validated, as DANE needs
	// (route.Hop.Authentic, RFC 7672 §2.2). Always false for a host.
	HopAuthentic bool `json:"hop_authentic"`

	Warnings []string `json:"warnings"`
	// Error is why the probe of this port failed ("" when it did not):
	// unreachable, a refusing greeting, a failed EHLO or TLS handshake.
	Error string `json:"error"`
	// Transcript is the conversation ("C: ", "S: " and "* " notes), kept
	// only when asked for.
	Transcript []string `json:"transcript,omitempty"`
}

// OK reports a port that was probed to the end without an error.
func (r Result) OK() bool { return r.Connected && r.Error == "" }

// TLSInfo describes the negotiated TLS session and the server's
// certificate as inspected after the handshake.
type TLSInfo struct {
	Version     string `json:"version"` // "TLS 1.3"
	Cipher      string `json:"cipher"`  // IANA name, "TLS_AES_128_GCM_SHA256"
	HandshakeMS int64  `json:"handshake_ms"`
	// ServerName is the SNI sent ("" for an IP address, RFC 6066 §3).
	ServerName string `json:"server_name"`
	// VerifyName is the name the certificate was checked against:
	// --servername, or the target host.
	VerifyName    string    `json:"verify_name"`
	Certificate   *CertInfo `json:"certificate"`
	ChainVerified bool      `json:"chain_verified"` // to the system roots or --ca, at the probe's clock
	ChainError    string    `json:"chain_error"`
	NameMatches   bool      `json:"name_matches"` // RFC 6125 via crypto/x509
	NameError     string    `json:"name_error"`
	// Valid is ChainVerified and NameMatches: what the verify policy needs.
	Valid bool `json:"valid"`
}

// TLSACheck is the outcome of matching the presented chain against the
// hop's usable TLSA records (RFC 7672 §3).
type TLSACheck struct {
	Matches bool   `json:"matches"`
	Result  string `json:"result"` // the TLS-RPT result type when it does not match
	Error   string `json:"error"`
}

// NoSNIInfo is what a handshake without the server_name extension
// (RFC 6066 §3) showed. RFC 7672 §8.1 makes DANE clients send SNI, but
// many opportunistic senders send none: a server should still present a
// certificate, ideally the same one.
type NoSNIInfo struct {
	Presented       bool   `json:"presented"`        // a certificate came
	SameCertificate bool   `json:"same_certificate"` // the same leaf as with SNI
	SHA256          string `json:"sha256"`           // the leaf's fingerprint, hex
	NameMatches     bool   `json:"name_matches"`     // valid for the same verify_name
	Error           string `json:"error"`            // the second connection failed
}

// CertInfo is the server's leaf certificate.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans"` // "DNS:mx.example.net", "IP:192.0.2.1"
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"` // whole days until NotAfter; negative once expired
	Serial    string    `json:"serial"`    // hex
	SHA256    string    `json:"sha256"`    // fingerprint of the DER, hex
	// Chain is the number of certificates the server sent (leaf included).
	Chain int `json:"chain"`
}

// Exit statuses of `smtpkit probe` (docs/probe.md). When several apply,
// the highest wins.
const (
	ExitOK          = 0 // every port reachable, no protocol failure, requirements met
	ExitFailure     = 1 // a port unreachable, or a protocol/TLS failure
	ExitUsage       = 2 // bad command line (decided by the command, not here)
	ExitNoTLS       = 3 // --require-tls: a reachable port did not do TLS
	ExitInvalidCert = 4 // --require-valid-cert: a reachable port had no valid certificate
	// ExitEnforcedTLS: a DOMAIN's next hop where TLS the domain enforces
	// (DANE, MTA-STS in enforce mode) would fail: delivery would defer.
	ExitEnforcedTLS = 5
	ExitVulnerable  = 6 // --smuggling: a port is vulnerable
)

// Exit is the process exit status for the report under the given
// requirements.
func (rep Report) Exit(requireTLS, requireValidCert bool) int {
	code := ExitOK
	raise := func(c int) {
		if c > code {
			code = c
		}
	}
	for _, d := range rep.Domains {
		for _, h := range d.Hops {
			if h.EnforcedTLSFails {
				raise(ExitEnforcedTLS)
			}
		}
	}
	for _, r := range rep.Results {
		if !r.OK() {
			raise(ExitFailure)
		}
		if !r.Connected {
			continue
		}
		if requireTLS && r.TLS == nil {
			raise(ExitNoTLS)
		}
		if requireValidCert && (r.TLS == nil || !r.TLS.Valid) {
			raise(ExitInvalidCert)
		}
	}
	return code
}
