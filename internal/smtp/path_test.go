package smtp

import (
	"errors"
	"strings"
	"testing"
)

// wantReply checks that err is an *Error with the given code and enhanced code.
func wantReply(t *testing.T, err error, code int, enh Enhanced) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *Error %d %s", err, err, code, enh)
	}
	if se.Reply.Code != code || se.Reply.Enhanced != enh {
		t.Fatalf("err = %v, want %d %s", err, code, enh)
	}
}

func TestParseAddress(t *testing.T) {
	long64 := strings.Repeat("a", 64)
	label63 := strings.Repeat("b", 63)
	dom255 := strings.Repeat(strings.Repeat("c", 62)+".", 4)[:251] + ".com" // 255 octets
	tests := []struct {
		in     string
		local  string
		domain string
		bad    bool
	}{
		{in: "user@example.org", local: "user", domain: "example.org"},
		{in: "User.Name+tag@Example.ORG", local: "User.Name+tag", domain: "Example.ORG"},
		{in: "!#$%&'*+-/=?^_`{|}~@x.y", local: "!#$%&'*+-/=?^_`{|}~", domain: "x.y"},
		{in: `"a b"@example.org`, local: "a b", domain: "example.org"},
		{in: `"a\"b\\c"@example.org`, local: `a"b\c`, domain: "example.org"},
		{in: `"a@b"@example.org`, local: "a@b", domain: "example.org"},
		{in: `"a..b"@example.org`, local: "a..b", domain: "example.org"},
		{in: `""@example.org`, local: "", domain: "example.org"},
		{in: `"a>b"@example.org`, local: "a>b", domain: "example.org"},
		{in: "a@[127.0.0.1]", local: "a", domain: "[127.0.0.1]"},
		{in: "a@[010.0.0.255]", local: "a", domain: "[010.0.0.255]"},
		{in: "a@[IPv6:2001:db8::1]", local: "a", domain: "[IPv6:2001:db8::1]"},
		{in: "a@[ipv6:::1]", local: "a", domain: "[ipv6:::1]"},
		{in: "a@[IPv6:::ffff:192.0.2.1]", local: "a", domain: "[IPv6:::ffff:192.0.2.1]"},
		{in: "jörg@bücher.de", local: "jörg", domain: "bücher.de"},
		{in: "用户@例子.广告", local: "用户", domain: "例子.广告"},
		{in: `"jö rg"@example.org`, local: "jö rg", domain: "example.org"},
		{in: "a@xn--bcher-kva.de", local: "a", domain: "xn--bcher-kva.de"},
		{in: "a@123.example", local: "a", domain: "123.example"},
		{in: "a@localhost", local: "a", domain: "localhost"},
		{in: long64 + "@x.org", local: long64, domain: "x.org"},
		{in: "a@" + label63 + ".org", local: "a", domain: label63 + ".org"},
		{in: "a@" + dom255, local: "a", domain: dom255},
		{in: "", bad: true},
		{in: "user", bad: true},
		{in: "user@", bad: true},
		{in: "@example.org", bad: true},
		{in: "a@@example.org", bad: true},
		{in: "a@b@example.org", bad: true},
		{in: ".a@example.org", bad: true},
		{in: "a.@example.org", bad: true},
		{in: "a..b@example.org", bad: true},
		{in: "a b@example.org", bad: true},
		{in: "a(b)@example.org", bad: true},
		{in: "a,b@example.org", bad: true},
		{in: "a\x00@example.org", bad: true},
		{in: `"a@example.org`, bad: true},
		{in: `"a"b@example.org`, bad: true},
		{in: `"a\`, bad: true},
		{in: "\"a\x01\"@example.org", bad: true},
		{in: "\"a\\\x01\"@example.org", bad: true},
		{in: "a@example..org", bad: true},
		{in: "a@.example.org", bad: true},
		{in: "a@example.org.", bad: true},
		{in: "a@-example.org", bad: true},
		{in: "a@example-.org", bad: true},
		{in: "a@exa_mple.org", bad: true},
		{in: "a@exa mple.org", bad: true},
		{in: "a@[127.0.0.256]", bad: true},
		{in: "a@[127.0.0]", bad: true},
		{in: "a@[127.0.0.1.5]", bad: true},
		{in: "a@[1234.0.0.1]", bad: true},
		{in: "a@[127.0.0.1", bad: true},
		{in: "a@[]", bad: true},
		{in: "a@[IPv6:127.0.0.1]", bad: true},
		{in: "a@[IPv6:fe80::1%eth0]", bad: true},
		{in: "a@[IPv6:2001:db8::g]", bad: true},
		{in: "a@[2001:db8::1]", bad: true},
		{in: "a@[x-tag:stuff]", bad: true},
		{in: "a@[127.0.0.1]x", bad: true},
		{in: "a" + long64 + "@x.org", bad: true},
		{in: `"` + long64 + `"@x.org`, bad: true},
		{in: "a@" + label63 + "b.org", bad: true},
		{in: "a@x" + dom255, bad: true},
		{in: "a\xff@example.org", bad: true},
		{in: "a@exa\xffmple.org", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseAddress(%q) = %+v, want error", tt.in, a)
				}
				wantReply(t, err, 501, "5.1.3")
				return
			}
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if a.Local != tt.local || a.Domain != tt.domain {
				t.Fatalf("ParseAddress(%q) = %q @ %q, want %q @ %q", tt.in, a.Local, a.Domain, tt.local, tt.domain)
			}
			// Formatting and parsing again gives the same address.
			b, err := ParseAddress(a.String())
			if err != nil || b != a {
				t.Errorf("round trip via %q = %+v, %v", a.String(), b, err)
			}
		})
	}
}

func TestAddressMethods(t *testing.T) {
	tests := []struct {
		a                   Address
		str                 string
		null, ascii, tricky bool
		lower               string
	}{
		{a: Address{}, str: "", null: true, ascii: true},
		{a: Address{Local: "Postmaster"}, str: "Postmaster", ascii: true},
		{a: Address{Local: "a", Domain: "Example.ORG"}, str: "a@Example.ORG", ascii: true, lower: "example.org"},
		{a: Address{Local: "a b", Domain: "x"}, str: `"a b"@x`, ascii: true, lower: "x"},
		{a: Address{Local: `a"b\c`, Domain: "x"}, str: `"a\"b\\c"@x`, ascii: true, lower: "x"},
		{a: Address{Local: "", Domain: "x"}, str: `""@x`, ascii: true, lower: "x"},
		{a: Address{Local: ".a", Domain: "x"}, str: `".a"@x`, ascii: true, lower: "x"},
		{a: Address{Local: "user%other.org", Domain: "x"}, str: "user%other.org@x", ascii: true, tricky: true, lower: "x"},
		{a: Address{Local: "other.org!user", Domain: "x"}, str: "other.org!user@x", ascii: true, tricky: true, lower: "x"},
		{a: Address{Local: "victim@other.org", Domain: "x"}, str: `"victim@other.org"@x`, ascii: true, tricky: true, lower: "x"},
		{a: Address{Local: "jörg", Domain: "BÜCHER.de"}, str: "jörg@BÜCHER.de", lower: "bÜcher.de"},
		{a: Address{Local: "a", Domain: "bücher.de"}, str: "a@bücher.de", lower: "bücher.de"},
		{a: Address{Local: "a", Domain: "[IPv6:2001:DB8::1]"}, str: "a@[IPv6:2001:DB8::1]", ascii: true, lower: "[ipv6:2001:db8::1]"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.a, got, tt.str)
		}
		if got := string(tt.a.AppendTo([]byte("<"))); got != "<"+tt.str {
			t.Errorf("%+v.AppendTo(\"<\") = %q, want %q", tt.a, got, "<"+tt.str)
		}
		if got := tt.a.IsNull(); got != tt.null {
			t.Errorf("%+v.IsNull() = %v", tt.a, got)
		}
		if got := tt.a.IsASCII(); got != tt.ascii {
			t.Errorf("%+v.IsASCII() = %v", tt.a, got)
		}
		if got := tt.a.RoutingTrick(); got != tt.tricky {
			t.Errorf("%+v.RoutingTrick() = %v", tt.a, got)
		}
		if got := tt.a.DomainLower(); got != tt.lower {
			t.Errorf("%+v.DomainLower() = %q, want %q", tt.a, got, tt.lower)
		}
	}
}

type pathCase struct {
	arg    string
	utf8   bool
	local  string
	domain string
	route  bool
	params Params
	code   int // 0: success
	enh    Enhanced
}

func checkPathCase(t *testing.T, parse func(string, bool) (Path, Params, error), tt pathCase) {
	t.Helper()
	p, params, err := parse(tt.arg, tt.utf8)
	if tt.code != 0 {
		if err == nil {
			t.Fatalf("(%q, %v) = %+v %v, want error %d %s", tt.arg, tt.utf8, p, params, tt.code, tt.enh)
		}
		wantReply(t, err, tt.code, tt.enh)
		return
	}
	if err != nil {
		t.Fatalf("(%q, %v): %v", tt.arg, tt.utf8, err)
	}
	if p.Addr.Local != tt.local || p.Addr.Domain != tt.domain || p.SourceRoute != tt.route {
		t.Errorf("(%q) = %+v, want %q @ %q route %v", tt.arg, p, tt.local, tt.domain, tt.route)
	}
	if tt.params == nil {
		tt.params = Params{}
	}
	if len(params) != len(tt.params) {
		t.Errorf("(%q) params = %v, want %v", tt.arg, params, tt.params)
	}
	for k, v := range tt.params {
		if got, ok := params[k]; !ok || got != v {
			t.Errorf("(%q) params[%s] = %q, %v, want %q", tt.arg, k, got, ok, v)
		}
	}
}

func TestParseMail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "org" // 252 octets
	tests := []pathCase{
		{arg: "FROM:<a@example.org>", local: "a", domain: "example.org"},
		{arg: "from:<a@example.org>", local: "a", domain: "example.org"},
		{arg: "From: <a@example.org>", local: "a", domain: "example.org"},
		{arg: "FROM:<>", local: "", domain: ""},
		{arg: "FROM:<> BODY=8BITMIME", params: Params{"BODY": "8BITMIME"}},
		{arg: "FROM:<a@example.org> SIZE=1000 body=8bitmime", local: "a", domain: "example.org",
			params: Params{"SIZE": "1000", "BODY": "8bitmime"}},
		{arg: "FROM:<a@example.org>  SIZE=1  ", local: "a", domain: "example.org", params: Params{"SIZE": "1"}},
		{arg: `FROM:<"a>b c"@example.org>`, local: "a>b c", domain: "example.org"},
		{arg: "FROM:<@relay1.example,@relay2.example:a@example.org>", local: "a", domain: "example.org", route: true},
		{arg: "FROM:<@relay.example:a@[192.0.2.1]>", local: "a", domain: "[192.0.2.1]", route: true},
		{arg: "FROM:<a@[IPv6:2001:db8::1]>", local: "a", domain: "[IPv6:2001:db8::1]"},
		{arg: "FROM:<" + long + ">", local: strings.Repeat("a", 64), domain: long[65:]},
		// RFC 6531: UTF-8 needs the extension offered and the parameter given.
		{arg: "FROM:<jörg@bücher.de> SMTPUTF8", utf8: true, local: "jörg", domain: "bücher.de", params: Params{"SMTPUTF8": ""}},
		{arg: "FROM:<a@b.c> SMTPUTF8 AUTH=jörg", utf8: true, local: "a", domain: "b.c", params: Params{"SMTPUTF8": "", "AUTH": "jörg"}},
		{arg: "FROM:<jörg@bücher.de>", utf8: true, code: 553, enh: "5.6.7"},
		{arg: "FROM:<jörg@bücher.de> SMTPUTF8", code: 553, enh: "5.6.7"},
		{arg: "FROM:<a@bücher.de>", code: 553, enh: "5.6.7"},
		{arg: "FROM:<a@b.c> AUTH=jörg", code: 501, enh: "5.5.4"},
		{arg: "FROM:<j\xf6rg@b.de> SMTPUTF8", utf8: true, code: 501, enh: "5.1.7"},
		// Syntax.
		{arg: "", code: 501, enh: "5.5.4"},
		{arg: "TO:<a@b.c>", code: 501, enh: "5.5.4"},
		{arg: "FROM <a@b.c>", code: 501, enh: "5.5.4"},
		{arg: "FROM:a@b.c", code: 501, enh: "5.1.7"},
		{arg: "FROM:", code: 501, enh: "5.1.7"},
		{arg: "FROM:  <a@b.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b.c", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b.c>x", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b.c>>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<<a@b.c>>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a b@c.d>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@relay:>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@relay a@b.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@[1.2.3.4]:a@b.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@relay,relay2:a@b.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<Postmaster>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a" + long + ">", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a" + long, code: 501, enh: "5.1.7"},
		// Parameters.
		{arg: "FROM:<a@b.c> SIZE=1 SIZE=2", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b.c> SIZE=1 size=1", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b.c> SIZE=", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b.c> =1", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b.c> -X=1", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b.c>\tSIZE=1", code: 501, enh: "5.1.7"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) { checkPathCase(t, ParseMail, tt) })
	}
}

func TestParseRcpt(t *testing.T) {
	tests := []pathCase{
		{arg: "TO:<a@example.org>", local: "a", domain: "example.org"},
		{arg: "to: <a@example.org>", local: "a", domain: "example.org"},
		{arg: "TO:<Postmaster>", local: "Postmaster"},
		{arg: "TO:<postMASTER>", local: "Postmaster"},
		{arg: "TO:<postmaster@example.org>", local: "postmaster", domain: "example.org"},
		{arg: "TO:<Postmaster> NOTIFY=NEVER", local: "Postmaster", params: Params{"NOTIFY": "NEVER"}},
		{arg: "TO:<a@b.c> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b.c", local: "a", domain: "b.c",
			params: Params{"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;a+40b.c"}},
		{arg: "TO:<@hosta.int,@jkl.org:userc@d.bar.org>", local: "userc", domain: "d.bar.org", route: true},
		{arg: `TO:<"user@other.org"@example.org>`, local: "user@other.org", domain: "example.org"},
		{arg: "TO:<user%other.org@example.org>", local: "user%other.org", domain: "example.org"},
		{arg: "TO:<a@[127.0.0.1]>", local: "a", domain: "[127.0.0.1]"},
		{arg: "TO:<用户@例子.广告>", utf8: true, local: "用户", domain: "例子.广告"},
		{arg: "TO:<用户@例子.广告>", code: 553, enh: "5.6.7"},
		{arg: "TO:<a@b.c> ORCPT=utf-8;jörg", code: 501, enh: "5.5.4"},
		{arg: "TO:<Postmaster> X=jörg", code: 501, enh: "5.5.4"},
		{arg: "TO:<a@b.c> ORCPT=utf-8;jörg", utf8: true, local: "a", domain: "b.c", params: Params{"ORCPT": "utf-8;jörg"}},
		{arg: "TO:<>", code: 501, enh: "5.1.3"},
		{arg: "TO:a@b.c", code: 501, enh: "5.1.3"},
		{arg: "TO:<a@b.c", code: 501, enh: "5.1.3"},
		{arg: "TO:<Postmaster@>", code: 501, enh: "5.1.3"},
		{arg: "TO:<a@b..c>", code: 501, enh: "5.1.3"},
		{arg: "TO:<" + strings.Repeat("a", 65) + "@b.c>", code: 501, enh: "5.1.3"},
		{arg: "TO:<a@" + strings.Repeat("b.", 130) + "c>", code: 501, enh: "5.1.3"},
		{arg: "FROM:<a@b.c>", code: 501, enh: "5.5.4"},
		{arg: "TO <a@b.c>", code: 501, enh: "5.5.4"},
		{arg: "TO:<a@b.c> A=1 a=2", code: 501, enh: "5.5.4"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) { checkPathCase(t, ParseRcpt, tt) })
	}
}

func TestPathTooLong(t *testing.T) {
	// Each part is within its own limit, but the path is over 256 octets
	// (RFC 5321 §4.5.3.1.3).
	addr := strings.Repeat("a", 64) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 3) + "orgxyzw" // 255 octets
	if _, err := ParseAddress(addr); err != nil {
		t.Fatalf("ParseAddress: %v", err)
	}
	_, _, err := ParseMail("FROM:<"+addr+">", false)
	wantReply(t, err, 501, "5.1.7")
	if !strings.Contains(err.Error(), "path too long") {
		t.Errorf("MAIL error %q does not say why", err)
	}
	_, _, err = ParseRcpt("TO:<"+addr+">", false)
	wantReply(t, err, 501, "5.1.3")
	if !strings.Contains(err.Error(), "path too long") {
		t.Errorf("RCPT error %q does not say why", err)
	}
}
