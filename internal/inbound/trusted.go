package inbound

import "smtpkit/internal/server"

// trusted.go: clients in the listener's trusted networks
// (server.SessionInfo.Trusted, Postfix's mynetworks). On mx listeners
// such a client may relay without AUTH — the web application or cron box
// that hands its mail to the local MTA — and its mail is treated as
// submission: queued, DKIM-signed for its From domain, not verified by
// [verify]. On submission listeners the server still requires AUTH
// before MAIL (RFC 6409 §4.3), so trust changes nothing there.

// The relay kinds recorded in queue.Meta.Relay and logged with each
// queued message (relay=...).
const (
	relayAuth    = "auth"    // an authenticated submitter
	relayTrusted = "trusted" // a client in the trusted networks, not authenticated
	relayForward = "forward" // neither: only forwarding (aliases, SRS bounces) reaches the queue
)

// submitter reports whether the session's mail is our own users': an
// authenticated client, or one in the trusted networks. Such mail may
// go to any domain, is signed and is not verified.
func submitter(s *server.SessionInfo) bool {
	return s != nil && (s.AuthUser != "" || s.Trusted)
}

// relayKind is how mail of the session came to be relayed.
func relayKind(s *server.SessionInfo) string {
	switch {
	case s == nil:
		return relayForward
	case s.AuthUser != "":
		return relayAuth
	case s.Trusted:
		return relayTrusted
	}
	return relayForward
}
