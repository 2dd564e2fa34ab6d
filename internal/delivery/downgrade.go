package delivery

import (
	"errors"
	"io"
	"strings"

	"smtpkit/internal/client"
	"smtpkit/internal/dkim"
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
// The conversion breaks the DKIM signatures made over the original bytes
// (RFC 6376 §3.4: the body hash and the signed fields change). Ours, the
// DKIM-Signature fields sign (internal/dkim) finds in d.Prepend, are left
// out and the converted copy is signed again with the same keys in the
// first pass; the other prepended fields stay. resigned reports it.
//
// env is updated: no BODY parameter, the converted size. The caller closes
// the body.
func downgrade(d *queue.Attempt, ext string, env *client.Envelope, sign *dkim.Signer) (body io.ReadCloser, resigned bool, err error) {
	keys, kept := sign.Own(d.Prepend)
	open := d.Open
	var m *dkim.Message
	if len(keys) > 0 {
		open = func() (io.ReadCloser, error) { return withoutPrepend(d, kept) }
		m = sign.BeginWith(keys)
		defer m.Abort()
	}
	src, err := open()
	if err != nil {
		return nil, false, temporary(err)
	}
	var size countWriter
	var w io.Writer = &size
	if m != nil {
		w = io.MultiWriter(&size, m)
	}
	_, err = mimeconv.To7Bit(w, src)
	src.Close()
	if err != nil {
		if errors.Is(err, mimeconv.ErrNotMIME) || errors.Is(err, mimeconv.ErrCannotConvert) {
			return nil, false, smtp.Wrap(smtp.R(smtp.CodeTransactionFailed, smtp.EnhNoConversion,
				"the message cannot be converted to 7 bit for a server without "+ext), errors.Join(client.ErrRefused, err))
		}
		return nil, false, temporary(err)
	}
	var fields string
	if m != nil {
		if fields, err = m.Finish(); err != nil {
			return nil, false, temporary(err)
		}
	}
	env.EightBit, env.Binary, env.Size = false, false, int64(len(fields))+size.n
	pr, pw := io.Pipe()
	go func() {
		_, err := io.WriteString(pw, fields)
		var src io.ReadCloser
		if err == nil {
			src, err = open()
		}
		if err == nil {
			_, err = mimeconv.To7Bit(pw, src)
			src.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, fields != "", nil // closing it ends the goroutine's writes
}

// withoutPrepend opens d's message with kept in place of d.Prepend, the
// fields Open puts before the stored bytes.
func withoutPrepend(d *queue.Attempt, kept string) (io.ReadCloser, error) {
	rc, err := d.Open()
	if err != nil {
		return nil, err
	}
	head := make([]byte, len(d.Prepend))
	if _, err := io.ReadFull(rc, head); err != nil || string(head) != d.Prepend {
		rc.Close()
		return nil, errors.Join(errors.New("delivery: the message does not start with its prepended fields"), err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(strings.NewReader(kept), rc), rc}, nil
}
