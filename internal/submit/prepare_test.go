package submit

import (
	"errors"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPrepare(t *testing.T) {
	d := Defaults{Sender: "me@host.example", Domain: "local.example"}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		req    Request
		in     string
		from   string
		rcpts  []string
		header []string // fields that must be in the result
		absent []string
		err    bool
	}{
		{
			name: "-t with arguments, duplicates, groups, Bcc removed",
			req:  Request{HeaderRcpts: true, Rcpts: []string{"Extra <x@e.example>, y@e.example"}},
			in:   "To: a@t.example, \"B\" <b@t.example>\r\nCc: list:c@t.example, A@t.example;\r\nBcc: d@t.example\r\nFrom: f@t.example\r\n\r\nbody\r\n",
			from: "me@host.example", rcpts: []string{"x@e.example", "y@e.example", "a@t.example", "b@t.example", "c@t.example", "d@t.example"},
			header: []string{"From: f@t.example\r\n", "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n", "Message-ID: <"}, absent: []string{"Bcc"},
		},
		{
			name: "arguments only, -t absent: header recipients ignored, local names qualified",
			req:  Request{From: "s@x.example", FullName: "Jörg", Rcpts: []string{"root"}},
			in:   "To: a@t.example\r\nSubject: x\r\n\r\n",
			from: "s@x.example", rcpts: []string{"root@local.example"},
			header: []string{"From: =?utf-8?q?J=C3=B6rg?= <s@x.example>\r\n", "@x.example>\r\n"},
		},
		{name: "null sender", req: Request{From: "<>", Rcpts: []string{"a@t.example"}}, in: "\r\n", from: "", rcpts: []string{"a@t.example"},
			header: []string{"From: <me@host.example>\r\n"}},
		{name: "-t with local names", req: Request{HeaderRcpts: true}, in: "To: root, admin\r\nCc: x@t.example\r\n\r\n", from: "me@host.example",
			rcpts: []string{"root@local.example", "admin@local.example", "x@t.example"}},
		// issue #19: what exited 65 ("missing '@'") before.
		{name: "-t with a local name beside an address, and a display name", req: Request{HeaderRcpts: true},
			in: "To: alice, bob@localhost\r\nCc: Alice <carol>\r\n\r\n", from: "me@host.example",
			rcpts:  []string{"alice@local.example", "bob@localhost", "carol@local.example"},
			header: []string{"To: <alice@local.example>, <bob@localhost>\r\n", "Cc: \"Alice\" <carol@local.example>\r\n"}},
		{name: "no recipients", req: Request{HeaderRcpts: true}, in: "Subject: x\r\n\r\n", err: true},
		{name: "bad header address", req: Request{HeaderRcpts: true}, in: "To: <a@\r\n\r\n", err: true},
		{name: "bad sender", req: Request{From: "not an address", Rcpts: []string{"a@t.example"}}, in: "\r\n", err: true},
		{name: "bad recipient", req: Request{Rcpts: []string{"a@@b"}}, in: "\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, msg, err := Prepare([]byte(tt.in), tt.req, d, now)
			if tt.err {
				if err == nil {
					t.Errorf("no error; env %+v", env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.From != tt.from || !reflect.DeepEqual(env.To, tt.rcpts) {
				t.Errorf("envelope %q → %q, want %q → %q", env.From, env.To, tt.from, tt.rcpts)
			}
			head := string(msg[:strings.Index(string(msg), "\r\n\r\n")+2])
			for _, h := range tt.header {
				if !strings.Contains(head, h) {
					t.Errorf("header lacks %q:\n%s", h, head)
				}
			}
			for _, h := range tt.absent {
				if strings.Contains(head, h) {
					t.Errorf("header has %q:\n%s", h, head)
				}
			}
			if _, err := mail.ReadMessage(strings.NewReader(string(msg))); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}

// TestPrepareArgError checks which refusals are about the request
// (sendmail's EX_USAGE) and which about the message (EX_DATAERR).
func TestPrepareArgError(t *testing.T) {
	d := Defaults{Sender: "me@host.example", Domain: "local.example"}
	tests := []struct {
		name string
		req  Request
		in   string
		arg  bool
	}{
		{"no recipients", Request{HeaderRcpts: true}, "Subject: x\r\n\r\n", true},
		{"bad sender", Request{From: "not an address", Rcpts: []string{"a@t.example"}}, "\r\n", true},
		{"bad recipient", Request{Rcpts: []string{"a@@b"}}, "\r\n", false},
		{"bad header address", Request{HeaderRcpts: true}, "To: <a@\r\n\r\n", false},
	}
	for _, tt := range tests {
		_, _, err := Prepare([]byte(tt.in), tt.req, d, time.Now())
		if err == nil || errors.As(err, new(ArgError)) != tt.arg {
			t.Errorf("%s: %v (ArgError: %v, want %v)", tt.name, err, errors.As(err, new(ArgError)), tt.arg)
		}
	}
}

func TestLoginDefaults(t *testing.T) {
	tests := []struct {
		user string
		want Defaults
	}{
		{"me@example.org", Defaults{Sender: "me@example.org", Domain: "example.org"}},
		{"\"a@b\"@example.org", Defaults{Sender: "\"a@b\"@example.org", Domain: "example.org"}},
		{"me", Defaults{Sender: "joe@host.example", Domain: "host.example"}},
	}
	for _, tt := range tests {
		if got := LoginDefaults(tt.user, "joe", "host.example"); got != tt.want {
			t.Errorf("LoginDefaults(%q) = %+v, want %+v", tt.user, got, tt.want)
		}
	}
}
