package client

import (
	"context"
	"strings"
	"testing"

	"smtpkit/internal/smtp"
)

// TestSendDSNParams: RFC 3461 §5.2 — to a server that offers DSN the
// client passes RET, ENVID (xtext) and each recipient's NOTIFY and ORCPT;
// to one that does not it sends none of them and says so (NoDSN), so the
// caller owes the "relayed" notices.
func TestSendDSNParams(t *testing.T) {
	env := Envelope{From: "a@example.org", To: []string{"b@example.net", "c@example.net"},
		Ret: smtp.RetHdrs, EnvID: "id 1+",
		DSN: []smtp.RcptDSN{{Notify: smtp.NotifySuccess | smtp.NotifyDelay, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "o+x@example.com"}}, {}}}
	for _, tt := range []struct {
		name        string
		ext         []string
		mail, rcpt1 string
	}{
		{"offered", []string{"DSN"}, "MAIL FROM:<a@example.org> RET=HDRS ENVID=id+201+2B",
			"RCPT TO:<b@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;o+2Bx@example.com"},
		{"not offered", nil, "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, []step{
				{send: greeting},
				ehloStep(tt.ext...),
				{recv: []string{tt.mail}, send: "250 ok\r\n"},
				{recv: []string{tt.rcpt1}, send: "250 ok\r\n"},
				{recv: []string{"RCPT TO:<c@example.net>"}, send: "250 ok\r\n"},
				{recv: []string{"DATA"}, send: "354 go\r\n"},
				{data: true, send: "250 ok\r\n"},
				quitStep(),
			})
			c := session(t, f, nil)
			res, err := c.Send(context.Background(), env, strings.NewReader("x\r\n"))
			if err != nil || res.Data != nil {
				t.Fatalf("Send: %v %+v", err, res)
			}
			<-f.data
			if res.NoDSN != (tt.ext == nil) {
				t.Errorf("NoDSN = %v", res.NoDSN)
			}
			finish(t, f, c)
		})
	}
}
