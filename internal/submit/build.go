package submit

import (
	"smtpkit/internal/client"
	"smtpkit/internal/compose"
)

// Build renders a composed message for the server c talks to, once its
// extensions are known: a non-ASCII body goes 8bit only when the server
// offers 8BITMIME (RFC 6152), else quoted-printable; the Message-ID is
// made in the sender's domain, or in localName (the EHLO name) when the
// sender has none.
func Build(m compose.Message, c *client.Conn, localName string) ([]byte, error) {
	m.MessageID = compose.NewMessageID(compose.SenderDomain(m.From.Address, localName))
	_, m.EightBit = c.Ext("8BITMIME")
	return m.Build()
}
