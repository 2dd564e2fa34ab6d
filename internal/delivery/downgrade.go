package delivery

import (
	"errors"
	"io"

	"smtpkit/internal/client"
	"smtpkit/internal/mimeconv"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// needsDowngrade reports which body type env asks for that the server of c
// does not offer: "BINARYMIME" (RFC 3030 §3 needs BINARYMIME and CHUNKING),
// "8BITMIME" (RFC 6152), or "" when it can be sent as it is.
func needsDowngrade(c *client.Conn, env client.Envelope) string {
	_, eight := c.Ext("8BITMIME")
	_, bin := c.Ext("BINARYMIME")
	_, chunking := c.Ext("CHUNKING")
	switch {
	case env.Binary && !(bin && chunking):
		return "BINARYMIME"
	case !env.Binary && env.EightBit && !eight:
		return "8BITMIME"
	}
	return ""
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// downgrade prepares d's message for a server that lacks the extension
// ext: the message is converted to 7 bit (internal/mimeconv), as RFC 6152
// §3 and RFC 3030 §4 allow, instead of being refused. A first pass checks
// that the conversion succeeds and measures its size, so that nothing
// half-converted is ever sent; the body returned converts again as it is
// read. A message that cannot be converted (binary content without MIME
// structure, 8-bit octets where no encoding can stand) is refused with 554
// 5.6.3, the client's own refusal (client.ErrRefused).
//
// env is updated: no BODY parameter, the converted size. The caller closes
// the body.
func downgrade(d *queue.Attempt, ext string, env *client.Envelope) (io.ReadCloser, error) {
	src, err := d.Open()
	if err != nil {
		return nil, temporary(err)
	}
	var size countWriter
	_, err = mimeconv.To7Bit(&size, src)
	src.Close()
	if err != nil {
		if errors.Is(err, mimeconv.ErrNotMIME) || errors.Is(err, mimeconv.ErrCannotConvert) {
			return nil, smtp.Wrap(smtp.R(smtp.CodeTransactionFailed, smtp.EnhNoConversion,
				"the message cannot be converted to 7 bit for a server without "+ext), errors.Join(client.ErrRefused, err))
		}
		return nil, temporary(err)
	}
	env.EightBit, env.Binary, env.Size = false, false, size.n
	pr, pw := io.Pipe()
	go func() {
		src, err := d.Open()
		if err == nil {
			_, err = mimeconv.To7Bit(pw, src)
			src.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil // closing it ends the goroutine's writes
}
