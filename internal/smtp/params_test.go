package smtp

import (
	"fmt"
	"testing"
)

func TestParseParams(t *testing.T) {
	many := ""
	for i := 0; i < MaxParams; i++ {
		many += fmt.Sprintf(" K%d=%d", i, i)
	}
	tests := []struct {
		in   string
		want Params
		bad  bool
	}{
		{in: "", want: Params{}},
		{in: "   ", want: Params{}},
		{in: "SIZE=1000", want: Params{"SIZE": "1000"}},
		{in: "size=1000 body=8BITMIME", want: Params{"SIZE": "1000", "BODY": "8BITMIME"}},
		{in: "SMTPUTF8", want: Params{"SMTPUTF8": ""}},
		{in: " SMTPUTF8  SIZE=1 ", want: Params{"SMTPUTF8": "", "SIZE": "1"}},
		{in: "X-Vendor-Thing=a:b;c", want: Params{"X-VENDOR-THING": "a:b;c"}},
		{in: "AUTH=<>", want: Params{"AUTH": "<>"}},
		{in: "ORCPT=rfc822;a+2Bb@c", want: Params{"ORCPT": "rfc822;a+2Bb@c"}},
		{in: "ORCPT=utf-8;jörg@b", want: Params{"ORCPT": "utf-8;jörg@b"}},
		{in: "9X=1", want: Params{"9X": "1"}},
		{in: many, want: nil},
		{in: many + " ONEMORE", bad: true},
		{in: "SIZE=1 SIZE=1", bad: true},
		{in: "Body=7BIT BODY=8BITMIME", bad: true},
		{in: "SIZE=", bad: true},
		{in: "=1", bad: true},
		{in: "-X=1", bad: true},
		{in: "X_Y=1", bad: true},
		{in: "SIZE=1=2", bad: true},
		{in: "SIZE=1\t", bad: true},
		{in: "A=\x00", bad: true},
		{in: "A=\x7f", bad: true},
		{in: "A=\xff", bad: true},
		{in: "Ä=1", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseParams(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseParams(%q) = %v, want error", tt.in, p)
				}
				wantReply(t, err, 501, "5.5.4")
				return
			}
			if err != nil {
				t.Fatalf("ParseParams(%q): %v", tt.in, err)
			}
			if p == nil {
				t.Fatalf("ParseParams(%q) = nil map", tt.in)
			}
			if tt.want == nil { // the MaxParams case
				if len(p) != MaxParams {
					t.Errorf("got %d params, want %d", len(p), MaxParams)
				}
				return
			}
			if fmt.Sprint(p) != fmt.Sprint(tt.want) {
				t.Errorf("ParseParams(%q) = %v, want %v", tt.in, p, tt.want)
			}
		})
	}
}

func TestParamsSize(t *testing.T) {
	tests := []struct {
		p     Params
		n     int64
		ok    bool
		isErr bool
	}{
		{p: Params{}, n: 0, ok: false},
		{p: Params{"SIZE": "0"}, n: 0, ok: true},
		{p: Params{"SIZE": "1000000"}, n: 1000000, ok: true},
		{p: Params{"SIZE": "9223372036854775807"}, n: 1<<63 - 1, ok: true},
		{p: Params{"SIZE": "9223372036854775808"}, n: 1<<63 - 1, ok: true},
		{p: Params{"SIZE": "99999999999999999999"}, n: 1<<63 - 1, ok: true},
		{p: Params{"SIZE": "00000000000000000042"}, n: 42, ok: true},
		{p: Params{"SIZE": "999999999999999999999"}, ok: true, isErr: true},
		{p: Params{"SIZE": ""}, ok: true, isErr: true},
		{p: Params{"SIZE": "-1"}, ok: true, isErr: true},
		{p: Params{"SIZE": "1k"}, ok: true, isErr: true},
		{p: Params{"SIZE": "99999999999999999999x"}, ok: true, isErr: true},
		{p: Params{"SIZE": "9999999999999999999x"}, ok: true, isErr: true},
	}
	for _, tt := range tests {
		n, ok, err := tt.p.Size()
		if tt.isErr {
			if err == nil {
				t.Errorf("%v.Size() = %d, %v, nil; want error", tt.p, n, ok)
				continue
			}
			wantReply(t, err, 501, "5.5.4")
		} else if err != nil || n != tt.n {
			t.Errorf("%v.Size() = %d, %v, %v; want %d", tt.p, n, ok, err, tt.n)
		}
		if ok != tt.ok {
			t.Errorf("%v.Size() ok = %v", tt.p, ok)
		}
	}
}

func TestParamsBody(t *testing.T) {
	tests := []struct {
		p    Params
		want string
		bad  bool
	}{
		{p: Params{}, want: ""},
		{p: Params{"BODY": "7bit"}, want: "7BIT"},
		{p: Params{"BODY": "8BITMIME"}, want: "8BITMIME"},
		{p: Params{"BODY": "BinaryMIME"}, want: "BINARYMIME"},
		{p: Params{"BODY": ""}, bad: true},
		{p: Params{"BODY": "8BIT"}, bad: true},
		{p: Params{"BODY": "BINARY"}, bad: true},
	}
	for _, tt := range tests {
		got, err := tt.p.Body()
		if tt.bad {
			if err == nil {
				t.Errorf("%v.Body() = %q, want error", tt.p, got)
				continue
			}
			wantReply(t, err, 501, "5.5.4")
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%v.Body() = %q, %v; want %q", tt.p, got, err, tt.want)
		}
	}
}

func TestXtext(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "user@example.org", want: "user@example.org"},
		{in: "a+2Bb@c", want: "a+b@c"},
		{in: "a+3Db", want: "a=b"},
		{in: "+20+2B+3D", want: " +="},
		{in: "<>", want: "<>"},
		{in: "j+C3+B6rg", want: "jörg"},
		{in: "a+2b", bad: true},
		{in: "a+2", bad: true},
		{in: "a+", bad: true},
		{in: "a+GG", bad: true},
		{in: "a=b", bad: true},
		{in: "a b", bad: true},
		{in: "a\x7fb", bad: true},
		{in: "jörg", bad: true},
	}
	for _, tt := range tests {
		got, err := DecodeXtext(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("DecodeXtext(%q) = %q, want error", tt.in, got)
				continue
			}
			wantReply(t, err, 501, "5.5.4")
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DecodeXtext(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// Encoding the decoded text and decoding it again is lossless.
		if back, err := DecodeXtext(EncodeXtext(got)); err != nil || back != got {
			t.Errorf("xtext round trip of %q = %q, %v", got, back, err)
		}
	}
	if got, want := EncodeXtext("a+b= c\x00ö"), "a+2Bb+3D+20c+00+C3+B6"; got != want {
		t.Errorf("EncodeXtext = %q, want %q", got, want)
	}
}
