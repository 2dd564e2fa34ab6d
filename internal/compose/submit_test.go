package compose

import (
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecipients(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"address lists and groups", "To: a@t.example, \"B\" <b@t.example>\r\nCc: list:c@t.example, A@t.example;\r\nBcc: d@t.example\r\nFrom: f@t.example\r\n\r\n",
			[]string{"a@t.example", "b@t.example", "c@t.example", "A@t.example", "d@t.example"}, false},
		{"local names, as cron writes them", "To: root, admin\r\nCc: x@t.example\r\n\r\n", []string{"root", "admin", "x@t.example"}, false},
		{"folded Bcc, any case", "bcc: d@x.example,\r\n e@x.example\r\nSubject: s\r\n\r\n", []string{"d@x.example", "e@x.example"}, false},
		{"empty field", "To: \r\nCc: c@x.example\r\n\r\n", []string{"c@x.example"}, false},
		{"no recipient fields", "Subject: x\r\n\r\n", nil, false},
		{"broken address", "To: <a@\r\n\r\n", nil, true},
		{"neither list nor names", "To: root admin\r\n\r\n", nil, true},
		// Mixed lists and display names around local names (issue #19).
		{"local name beside an address", "To: alice, bob@localhost\r\n\r\n", []string{"alice", "bob@localhost"}, false},
		{"display name and local name", "To: Alice <alice>\r\n\r\n", []string{"alice"}, false},
		{"quoted comma, comment, group", "To: \"Smith, Jo\" <jo>, carol (the boss), team: dan, e@x.example;\r\n\r\n",
			[]string{"jo", "carol", "dan", "e@x.example"}, false},
		{"bad local name", "To: alice, b..ob\r\n\r\n", nil, true},
		{"empty angle", "To: Alice <>\r\n\r\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := Split([]byte(tt.in))
			got, err := h.Recipients()
			if tt.err {
				if err == nil {
					t.Errorf("no error; %q", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recipients = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestQualifyRecipients: the fields Recipients read loosely are written
// again with the domain; strict address lists and broken fields stay.
func TestQualifyRecipients(t *testing.T) {
	in := "To: alice, bob@x.example\r\n" +
		"Cc: \"Smith, Jo\" <jo>, team: dan;\r\n" +
		"Bcc: Carol <carol@x.example>\r\n" +
		"Reply-To: root\r\n" +
		"X-To: root admin\r\n\r\n"
	h, _ := Split([]byte(in))
	h.QualifyRecipients("q.example")
	var got strings.Builder
	for _, f := range h.Fields {
		got.WriteString(f.Raw)
	}
	want := "To: <alice@q.example>, <bob@x.example>\r\n" +
		"Cc: \"Smith, Jo\" <jo@q.example>, <dan@q.example>\r\n" +
		"Bcc: Carol <carol@x.example>\r\n" +
		"Reply-To: root\r\n" +
		"X-To: root admin\r\n"
	if got.String() != want {
		t.Errorf("got\n%s\nwant\n%s", got.String(), want)
	}
}

func TestComplete(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	o := Origin{From: mail.Address{Name: "Jörg", Address: "s@x.example"}, Date: now, MessageIDDomain: "x.example"}
	tests := []struct {
		name, in string
		want     []string // fields of the result, in order, each a prefix of the raw field
	}{
		{"all added", "Subject: x\r\n\r\n",
			[]string{"Subject: x\r\n", "From: =?utf-8?q?J=C3=B6rg?= <s@x.example>\r\n", "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n", "Message-ID: <"}},
		{"all kept", "from: f@t.example\r\nDATE: yesterday\r\nMessage-Id: <1@t>\r\n\r\n",
			[]string{"from: f@t.example\r\n", "DATE: yesterday\r\n", "Message-Id: <1@t>\r\n"}},
		{"only Date missing", "From: f@t.example\r\nMessage-ID: <1@t>\r\n\r\n",
			[]string{"From: f@t.example\r\n", "Message-ID: <1@t>\r\n", "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := Split([]byte(tt.in))
			h.Complete(o)
			if len(h.Fields) != len(tt.want) {
				t.Fatalf("fields %q, want %q", h.Fields, tt.want)
			}
			for i, f := range h.Fields {
				if !strings.HasPrefix(f.Raw, tt.want[i]) {
					t.Errorf("field %d = %q, want %q…", i, f.Raw, tt.want[i])
				}
			}
			if id := h.Fields[len(h.Fields)-1].Raw; tt.name == "all added" && !strings.HasSuffix(id, "@x.example>\r\n") {
				t.Errorf("Message-ID = %q", id)
			}
		})
	}
}

func TestSenderDomain(t *testing.T) {
	tests := []struct{ sender, fallback, want string }{
		{"a@b.example", "host", "b.example"},
		{"\"x@y\"@b.example", "host", "b.example"},
		{"", "host", "host"},
		{"postmaster", "host", "host"},
		{"a@", "host", "host"},
	}
	for _, tt := range tests {
		if got := SenderDomain(tt.sender, tt.fallback); got != tt.want {
			t.Errorf("SenderDomain(%q, %q) = %q, want %q", tt.sender, tt.fallback, got, tt.want)
		}
	}
}
