package smtp

import (
	"strings"
	"testing"
)

func TestParseNotify(t *testing.T) {
	tests := []struct {
		in   string
		want Notify
		str  string
		bad  bool
	}{
		{in: "NEVER", want: NotifyNever, str: "NEVER"},
		{in: "never", want: NotifyNever, str: "NEVER"},
		{in: "SUCCESS", want: NotifySuccess, str: "SUCCESS"},
		{in: "failure,delay", want: NotifyFailure | NotifyDelay, str: "FAILURE,DELAY"},
		{in: "DELAY,SUCCESS,FAILURE", want: NotifySuccess | NotifyFailure | NotifyDelay, str: "SUCCESS,FAILURE,DELAY"},
		{in: "", bad: true},
		{in: "NEVER,SUCCESS", bad: true},
		{in: "FAILURE,NEVER", bad: true},
		{in: "NEVER,NEVER", bad: true},
		{in: "SUCCESS,SUCCESS", bad: true},
		{in: "SUCCESS,", bad: true},
		{in: ",SUCCESS", bad: true},
		{in: "SUCCESS,,DELAY", bad: true},
		{in: "SUCCESS DELAY", bad: true},
		{in: "ALWAYS", bad: true},
		{in: "SUCCES", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseNotify(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseNotify(%q) = %v, want error", tt.in, got)
				continue
			}
			wantReply(t, err, 501, "5.5.4")
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseNotify(%q) = %v (%q), %v; want %v (%q)", tt.in, got, got.String(), err, tt.want, tt.str)
		}
	}
}

func TestNotifyWants(t *testing.T) {
	tests := []struct {
		n                       Notify
		success, failure, delay bool
	}{
		{n: 0, failure: true, delay: true}, // absent: today's default
		{n: NotifyNever},
		{n: NotifySuccess, success: true},
		{n: NotifyFailure, failure: true},
		{n: NotifyDelay, delay: true},
		{n: NotifySuccess | NotifyFailure | NotifyDelay, success: true, failure: true, delay: true},
	}
	for _, tt := range tests {
		if tt.n.Success() != tt.success || tt.n.Failure() != tt.failure || tt.n.Delay() != tt.delay {
			t.Errorf("%q: success %v failure %v delay %v", tt.n.String(), tt.n.Success(), tt.n.Failure(), tt.n.Delay())
		}
	}
}

func TestParseRet(t *testing.T) {
	for in, want := range map[string]string{"FULL": RetFull, "hdrs": RetHdrs, "Full": RetFull, "": "", "HEADERS": "", "FULL,HDRS": ""} {
		got, err := ParseRet(in)
		if want == "" {
			if err == nil {
				t.Errorf("ParseRet(%q) = %q, want error", in, got)
			} else {
				wantReply(t, err, 501, "5.5.4")
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseRet(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseEnvID(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "QQ314159", want: "QQ314159"},
		{in: "a+20b+2Bc", want: "a b+c"},
		{in: strings.Repeat("x", 100), want: strings.Repeat("x", 100)},
		{in: strings.Repeat("x", 98) + "+2B", want: strings.Repeat("x", 98) + "+"},
		{in: strings.Repeat("x", 101), bad: true},
		{in: "", bad: true},
		{in: "a+0Db", bad: true}, // CR decoded: not printable
		{in: "a+C3+B6", bad: true},
		{in: "a+2b", bad: true},
		{in: "a=b", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseEnvID(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseEnvID(%q) = %q, want error", tt.in, got)
			} else {
				wantReply(t, err, 501, "5.5.4")
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEnvID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseORCPT(t *testing.T) {
	tests := []struct {
		in    string
		want  ORCPT
		param string // the value sent onwards
		bad   bool
	}{
		{in: "rfc822;bob@example.org", want: ORCPT{"rfc822", "bob@example.org"}, param: "rfc822;bob@example.org"},
		{in: "RFC822;a+2Bb@example.org", want: ORCPT{"rfc822", "a+b@example.org"}, param: "rfc822;a+2Bb@example.org"},
		{in: "rfc822;+22a+20b+22@x", want: ORCPT{"rfc822", `"a b"@x`}, param: `rfc822;"a+20b"@x`},
		{in: `utf-8;j\x{F6}rg@example.org`, want: ORCPT{"utf-8", "jörg@example.org"}, param: `utf-8;j\x{F6}rg@example.org`},
		{in: "UTF-8;jörg@example.org", want: ORCPT{"utf-8", "jörg@example.org"}, param: `utf-8;j\x{F6}rg@example.org`},
		{in: `utf-8;a\x{2B}b@x`, want: ORCPT{"utf-8", "a+b@x"}, param: `utf-8;a\x{2B}b@x`},
		{in: "rfc822;" + strings.Repeat("a", 493), want: ORCPT{"rfc822", strings.Repeat("a", 493)}, param: "rfc822;" + strings.Repeat("a", 493)},
		{in: "rfc822;" + strings.Repeat("a", 494), bad: true},
		{in: "rfc822;", bad: true},
		{in: "rfc822", bad: true},
		{in: ";bob@x", bad: true},
		{in: "x400;bob", bad: true},
		{in: "rfc822;a+0Ab", bad: true},
		{in: "rfc822;jörg@x", bad: true},
		{in: "rfc822;a+C3+B6@x", bad: true},
		{in: `utf-8;a\x{0A}b`, bad: true},
		{in: `utf-8;a\x{D800}b`, bad: true},
		{in: `utf-8;a\x{f6}b`, bad: true},
		{in: `utf-8;a\x{0F6}b`, bad: true},
		{in: `utf-8;a\x{F6b`, bad: true},
		{in: `utf-8;a\b`, bad: true},
		{in: "utf-8;a+b", bad: true},
		{in: "utf-8;a\xffb", bad: true},
		{in: "utf-8;a\u0085b", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseORCPT(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseORCPT(%q) = %+v, want error", tt.in, got)
			} else {
				wantReply(t, err, 501, "5.5.4")
			}
			continue
		}
		if err != nil || got != tt.want || got.Param() != tt.param {
			t.Errorf("ParseORCPT(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got.Param(), err, tt.want, tt.param)
		}
	}
	if f := (ORCPT{"utf-8", "jörg@x"}).Field(false); f != `utf-8;j\x{F6}rg@x` {
		t.Errorf("Field(false) = %q", f)
	}
	if f := (ORCPT{"utf-8", "jörg@x"}).Field(true); f != "utf-8;jörg@x" {
		t.Errorf("Field(true) = %q", f)
	}
}

func TestParamsRcptDSN(t *testing.T) {
	p, err := ParseParams("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.RcptDSN()
	if err != nil || d.Notify != NotifySuccess|NotifyFailure || d.ORCPT != (ORCPT{"rfc822", "a@b"}) {
		t.Fatalf("RcptDSN = %+v, %v", d, err)
	}
	if d, err := (Params{}).RcptDSN(); err != nil || d != (RcptDSN{}) {
		t.Fatalf("empty RcptDSN = %+v, %v", d, err)
	}
	if _, err := (Params{"NOTIFY": "NEVER,DELAY"}).RcptDSN(); err == nil {
		t.Fatal("bad NOTIFY accepted")
	}
	if _, err := (Params{"ORCPT": "bad"}).RcptDSN(); err == nil {
		t.Fatal("bad ORCPT accepted")
	}
	if r, err := (Params{"RET": "hdrs"}).Ret(); err != nil || r != RetHdrs {
		t.Fatalf("Ret = %q, %v", r, err)
	}
	if e, err := (Params{"ENVID": "x+2By"}).EnvID(); err != nil || e != "x+y" {
		t.Fatalf("EnvID = %q, %v", e, err)
	}
}
