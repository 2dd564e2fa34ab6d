package interop

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestStripTrace(t *testing.T) {
	msg := "Subject: hi\r\n\r\nbody\r\n"
	tests := []struct {
		name, in, want string
	}{
		{"return-path and received", "Return-Path: <a@b.example>\r\nReceived: from x by y; Mon, 2 Mar 2026\r\n" + msg, msg},
		{"folded received", "Return-Path: <>\r\nReceived: from x\r\n\tby y\r\n  with ESMTPS; date\r\n" + msg, msg},
		{"LF endings", "Return-Path: <a@b.example>\nReceived: from x\n by y\n" + msg, msg},
		{"received only", "Received: from x\r\n by y\r\n" + msg, msg},
		{"second received kept", "Return-Path: <>\r\nReceived: a\r\nReceived: b\r\n" + msg, "Received: b\r\n" + msg},
		{"no trace", msg, msg},
		{"case-insensitive names", "return-path: <>\r\nRECEIVED: x\r\n" + msg, msg},
		{"nothing after trace", "Return-Path: <>\r\nReceived: x\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(StripTrace([]byte(tc.in))); got != tc.want {
				t.Errorf("StripTrace(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDotStuff(t *testing.T) {
	got := string(dotStuff([]byte("a\r\n.\r\n.b\r\nc.\r\n")))
	if want := "a\r\n..\r\n..b\r\nc.\r\n"; got != want {
		t.Errorf("dotStuff = %q, want %q", got, want)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name, wire string
		want       Reply
		wantErr    bool
	}{
		{"single", "250 2.0.0 OK\r\n", Reply{250, []string{"2.0.0 OK"}}, false},
		{"multi", "250-mx.test.example\r\n250-PIPELINING\r\n250 SIZE 1048576\r\n",
			Reply{250, []string{"mx.test.example", "PIPELINING", "SIZE 1048576"}}, false},
		{"bare code", "250\r\n", Reply{250, []string{""}}, false},
		{"bare LF", "250 OK\n", Reply{}, true},
		{"code changes", "250-a\r\n251 b\r\n", Reply{}, true},
		{"bad separator", "250xOK\r\n", Reply{}, true},
		{"not a code", "abc OK\r\n", Reply{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer server.Close()
			go func() { server.Write([]byte(tc.wire)); server.Close() }()
			c := &Conn{t: t, nc: client}
			c.r = newReader(client)
			got, err := c.ReadReply()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestReplyEnhanced(t *testing.T) {
	for in, want := range map[string]string{
		"5.7.1 Relay denied": "5.7.1", "Relay denied": "", "": "", "1.2 x": "",
	} {
		if got := (Reply{550, []string{in}}).Enhanced(); got != want {
			t.Errorf("Enhanced(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHarnessTrustsNobodyByDefault: the config StartServer writes trusts
// no client unless the test sets trusted_networks itself (issue #15).
func TestHarnessTrustsNobodyByDefault(t *testing.T) {
	tests := []struct {
		name, top, want string
	}{
		{"default", "", "trusted_networks = []\n"},
		{"other top keys", "dnsbl_threshold = 2", "trusted_networks = []\n"},
		{"the test's own", "trusted_networks = [\"127.15.1.1\"]", "trusted_networks = [\"127.15.1.1\"]\n"},
		{"spaced", "  trusted_networks=[\"127.15.1.1\"]", "trusted_networks=[\"127.15.1.1\"]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{DataDir: "/nonexistent", MX: "127.0.0.1:1", Submission: "127.0.0.1:2", Submissions: "127.0.0.1:3"}
			cfg := s.config(ServerOptions{TopTOML: tc.top})
			if !strings.Contains(cfg, tc.want) || strings.Count(cfg, "trusted_networks") != 1 {
				t.Errorf("config has not exactly %q:\n%s", tc.want, cfg)
			}
		})
	}
}
