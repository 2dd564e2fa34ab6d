package inbound

import (
	"net"
	"testing"

	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// TestQueueEnvelopeCarriesSessionFlags: what MAIL said travels into the
// queue entry: REQUIRETLS (RFC 8689 §4.2: the message is tagged),
// SMTPUTF8, BODY=8BITMIME or BINARYMIME, and who sent it.
func TestQueueEnvelopeCarriesSessionFlags(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(127, 13, 4, 2), Port: 2525}
	to := []smtp.Address{addr("dave@far.example")}
	tests := []struct {
		name string
		env  server.Envelope
		want func(m queue.Meta) bool
	}{
		{"REQUIRETLS", server.Envelope{RequireTLS: true}, func(m queue.Meta) bool { return m.RequireTLS && !m.SMTPUTF8 && !m.EightBit }},
		{"nothing", server.Envelope{}, func(m queue.Meta) bool { return !m.RequireTLS && !m.SMTPUTF8 && !m.EightBit }},
		{"all", server.Envelope{RequireTLS: true, SMTPUTF8: true, Body: "8BITMIME"}, func(m queue.Meta) bool { return m.RequireTLS && m.SMTPUTF8 && m.EightBit }},
		{"BINARYMIME", server.Envelope{Body: "BINARYMIME"}, func(m queue.Meta) bool { return m.Binary && !m.EightBit }},
		{"8BITMIME is not binary", server.Envelope{Body: "8BITMIME"}, func(m queue.Meta) bool { return !m.Binary && m.EightBit }},
		{"session", server.Envelope{Session: &server.SessionInfo{AuthUser: "alice@example.com", Remote: remote}}, func(m queue.Meta) bool {
			return !m.RequireTLS && m.AuthUser == "alice@example.com" && m.ReceivedFrom == "127.13.4.2:2525"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env.From = addr("alice@example.com")
			q := queueEnvelope(&tt.env, to)
			if !tt.want(q.Meta) {
				t.Errorf("meta = %+v", q.Meta)
			}
			if len(q.To) != 1 || q.To[0] != to[0] {
				t.Errorf("to = %v", q.To)
			}
		})
	}
}
