package submit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"smtpkit/internal/client"
	"smtpkit/internal/compose"
	"smtpkit/internal/smtp"
)

// Outcome is what became of one transaction.
type Outcome struct {
	Err  error   // transport failure, or MAIL refused (*smtp.Error)
	Rcpt []error // per recipient
	Data error   // the message (nil: accepted)
}

// Transport reports whether the connection failed, so that what became of
// the recipients is not known for all of them.
func (o Outcome) Transport() bool {
	var se *smtp.Error
	return o.Err != nil && !errors.As(o.Err, &se)
}

// Transact sends msg to env over c, with SIZE (RFC 1870) and BODY=8BITMIME
// (RFC 6152) as msg needs, prints per recipient and for the message what
// the server said on report, and ends the session with QUIT.
func Transact(ctx context.Context, c *client.Conn, env client.Envelope, msg []byte, report io.Writer) Outcome {
	env.Size, env.EightBit = int64(len(msg)), compose.Has8Bit(msg)
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	o := Outcome{Err: err, Rcpt: res.Rcpt, Data: res.Data}
	if o.Transport() {
		fmt.Fprintf(report, "connection failed: %v\n", err)
		return o
	}
	for i, e := range res.Rcpt {
		if e == nil {
			fmt.Fprintf(report, "<%s>: accepted\n", env.To[i])
		} else {
			fmt.Fprintf(report, "<%s>: refused: %v\n", env.To[i], e)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(report, "message not sent: %v\n", err)
	case errors.Is(res.Data, client.ErrNoRecipients):
		fmt.Fprintln(report, "message not sent: no recipient accepted")
	case res.Data != nil:
		fmt.Fprintf(report, "message refused: %v\n", res.Data)
	default:
		fmt.Fprintf(report, "message accepted: %s\n", res.Reply.OneLine())
	}
	c.Quit()
	return o
}
