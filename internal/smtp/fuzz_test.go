package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@b>", "EHLO mx.example.org", "QUIT", "", " ", "rcpt to:<Postmaster>",
		"DATA\r", "X\x00", "HELO a\tb", "BDAT 0 LAST", "STARTTLS ", "MAİL FROM:<>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCommand(line, nil)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Reply.Code != CodeSyntax {
				t.Fatalf("error %v is not a 500 *Error", err)
			}
			return
		}
		if c.Verb == "" || len(c.Verb) > maxVerbLen {
			t.Fatalf("verb %q", c.Verb)
		}
		for i := 0; i < len(c.Verb); i++ {
			if ch := c.Verb[i]; !isDigit(ch) && (ch < 'A' || ch > 'Z') {
				t.Fatalf("verb %q has %q", c.Verb, ch)
			}
		}
		if strings.ContainsAny(c.Arg, "\r\n\x00") {
			t.Fatalf("arg %q", c.Arg)
		}
		joined := c.Verb
		if len(line) > len(c.Verb) {
			joined += " " + c.Arg
		}
		if !strings.EqualFold(joined, string(line)) {
			t.Fatalf("%q parsed as %q %q", line, c.Verb, c.Arg)
		}
	})
}

// checkPath holds for any path ParseMail or ParseRcpt accepts.
func checkPath(t *testing.T, arg string, p Path, params Params, err error, utf8OK bool, codes ...int) {
	t.Helper()
	if err != nil {
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("error %v is not an *Error", err)
		}
		for _, c := range codes {
			if se.Reply.Code == c {
				return
			}
		}
		t.Fatalf("error %v has an unexpected code", err)
	}
	// The params are nil exactly when nothing follows the path.
	_, after, _ := cutPath(arg[strings.IndexByte(arg, '<'):])
	if (params == nil) != (after == "") {
		t.Fatalf("%q: params %#v after the path %q", arg, params, after)
	}
	a := p.Addr
	if !utf8OK && (!a.IsASCII() || !utf8.ValidString(a.Local)) {
		t.Fatalf("%q: non-ASCII address %+v accepted without SMTPUTF8", arg, a)
	}
	if a.IsNull() || a.Domain == "" {
		return
	}
	b, err := ParseAddress(a.String())
	if err != nil || b != a {
		t.Fatalf("%q: %+v formats as %q which parses as %+v, %v", arg, a, a.String(), b, err)
	}
}

func FuzzParseMail(f *testing.F) {
	for _, s := range []string{
		"FROM:<a@example.org>", "FROM: <a@b.c> SIZE=100 BODY=8BITMIME", "from:<>", "FROM:<@a,@b:c@d>",
		`FROM:<"a b\"c"@[IPv6:::1]>`, "FROM:<jörg@bücher.de> SMTPUTF8", "FROM:<a@[1.2.3.4]> AUTH=a+2Bb",
		"FROM:<a@b", "FROM:<<>>", "FROM:<a@b> SIZE=1 SIZE=2",
		// RFC 8689 §2: REQUIRETLS takes no value.
		"FROM:<a@b> REQUIRETLS", "FROM:<a@b> requiretls SIZE=5", "FROM:<a@b> REQUIRETLS=", "FROM:<a@b> REQUIRETLS REQUIRETLS",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, arg string, utf8OK bool) {
		p, params, err := ParseMail(arg, utf8OK)
		checkPath(t, arg, p, params, err, utf8OK, CodeSyntaxParams, CodeMailboxName)
		if err == nil && p.Addr.Domain == "" && p.Addr.Local != "" {
			t.Fatalf("%q: MAIL accepted %+v", arg, p)
		}
	})
}

func FuzzParseRcpt(f *testing.F) {
	for _, s := range []string{
		"TO:<a@example.org>", "to: <Postmaster>", "TO:<>", "TO:<@a:b@c> NOTIFY=NEVER ORCPT=rfc822;b@c",
		`TO:<"x@y"@z>`, "TO:<用户@例子.广告>", "TO:<a@[IPv6:2001:db8::1]>", "TO:<a%b@c>", "TO:<a@b..c>",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, arg string, utf8OK bool) {
		p, params, err := ParseRcpt(arg, utf8OK)
		checkPath(t, arg, p, params, err, utf8OK, CodeSyntaxParams, CodeMailboxName)
		if err == nil && p.Addr.IsNull() {
			t.Fatalf("%q: RCPT accepted the null path", arg)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"a@b", `"a\\b"@c`, `""@x`, "a@[127.0.0.1]", "ü@ü.de", "a.b@c-d.e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if len(s) > MaxLocalPartLen+1+MaxDomainLen+2 {
			t.Fatalf("%q accepted: too long", s)
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, a, a.String(), b, err)
		}
	})
}

// refDot is a slow, obvious model of the DotReader: split at CRLF only,
// stop at the first line that is "." alone. It returns the message, the
// input after the terminator, and every error the data deserves.
func refDot(in []byte, maxSize int64, maxLine int) (out, rest []byte, errs []error, complete bool) {
	var size int64
	for {
		i := bytes.Index(in, []byte("\r\n"))
		if i < 0 {
			return nil, nil, nil, false
		}
		line := in[:i]
		in = in[i+2:]
		if string(line) == "." {
			return out, in, errs, true
		}
		if len(line)+2 > maxLine {
			errs = append(errs, ErrLineTooLong)
		}
		line = bytes.TrimPrefix(line, []byte("."))
		if bytes.IndexByte(line, '\n') >= 0 {
			errs = append(errs, ErrBareLF)
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			errs = append(errs, ErrBareCR)
		}
		if bytes.IndexByte(line, 0) >= 0 {
			errs = append(errs, ErrNUL)
		}
		size += int64(len(line) + 2)
		if maxSize > 0 && size > maxSize {
			errs = append(errs, ErrTooLarge)
		}
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
}

func FuzzDotReader(f *testing.F) {
	for _, s := range []string{
		"Hello\r\n.\r\nQUIT\r\n", ".\r\n", "..\r\n.\r\n", "a\n.\nb\r\n.\r\n", "a\n.\r\nb\r\n.\r\n",
		"a\r.\rb\r\n.\r\n", "a\r\n.\nb\r\n.\r\n", "a\r\n.\rb\r\n.\r\n", "a\r\r\n.\r\n", "abc",
		"0123456789012345678901234567890\r\n.\r\n", "\r\n\r\n.\r\nX",
		"a\r\n\x00.\r\nb\r\n.\r\n", "\x00\r\n.\r\n", ".\x00\r\n.\r\n", "a\x00\nb\r\n.\r\n",
	} {
		f.Add([]byte(s), int64(0), uint8(0))
		f.Add([]byte(s), int64(10), uint8(20))
	}
	f.Fuzz(checkDotReader)
}

// checkDotReader compares the DotReader, fed in several ways, with refDot.
func checkDotReader(t *testing.T, in []byte, maxSize int64, maxLine uint8) {
	ml := int(maxLine)
	if ml < 3 {
		ml = MaxLineLen
	}
	want, wantRest, wantErrs, complete := refDot(in, maxSize, ml)
	for _, k := range readerKinds {
		br := k.wrap(bytes.NewReader(in))
		d := NewDotReader(br, maxSize, ml)
		var out []byte
		buf := make([]byte, k.chunk)
		var err error
		for i := 0; err == nil; i++ {
			if i > len(in)+2 {
				t.Fatalf("%s: Read does not end", k.name)
			}
			var n int
			n, err = d.Read(buf)
			out = append(out, buf[:n]...)
		}
		if len(out) > len(in) {
			t.Fatalf("%s: %d octets out of %d in", k.name, len(out), len(in))
		}
		if !complete {
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%s: %q: err = %v, want unexpected EOF", k.name, in, err)
			}
			continue
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, wantRest) {
			t.Fatalf("%s: %q: left %q, want %q", k.name, in, rest, wantRest)
		}
		if len(wantErrs) == 0 {
			if err != io.EOF || !bytes.Equal(out, want) {
				t.Fatalf("%s: %q: got %q, %v; want %q", k.name, in, out, err, want)
			}
			// Stuffed again, the message has no early end of data.
			var w bytes.Buffer
			dw := NewDotWriter(&w)
			dw.Write(out)
			dw.Close()
			if i := bytes.Index(append([]byte("\r\n"), w.Bytes()...), []byte("\r\n.\r\n")); i != w.Len()-3 {
				t.Fatalf("%s: %q: restuffed %q ends at %d", k.name, out, w.Bytes(), i)
			}
			continue
		}
		found := false
		for _, e := range wantErrs {
			found = found || err == e
		}
		if !found {
			t.Fatalf("%s: %q: err = %v, want one of %v", k.name, in, err, wantErrs)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n", "250-a\r\n250 b\r\n", "550-5.1.1 a\r\n550 5.1.1 b\r\n", "354\r\n", "250-a\n250 b\n",
		"250 2.0.0\r\n", "abc\r\n", "250-a\r\n251 b\r\n", "", "250 a\rb\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(in), 16))
		if err != nil {
			return
		}
		if rep.Code < 200 || rep.Code > 559 || len(rep.Lines) == 0 || len(rep.Lines) > MaxReplyLines {
			t.Fatalf("%q: bad reply %#v", in, rep)
		}
		for _, l := range rep.Lines {
			if strings.ContainsAny(l, "\r\n") {
				return // Reply.Write would sanitise the CR: no round trip
			}
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		rep.Write(w, true)
		w.Flush()
		back, err := ReadReply(bufio.NewReader(&b))
		if err != nil || !reflect.DeepEqual(back, rep) {
			t.Fatalf("%q: %#v written as %q reads back as %#v, %v", in, rep, b.String(), back, err)
		}
	})
}

// FuzzParseLimits: any EHLO LIMITS text parses without panic, limits are
// never negative, and what FormatLimits writes parses back the same.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"RCPTMAX=100 MAILMAX=50", "rcptdomainmax=1", "FOO=bar", "RCPTMAX=", "RCPTMAX=99999999999", "A=1 A=2", "  ", "MAILMAX=1\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLimits(s)
		if l.MailMax < 0 || l.RcptMax < 0 || l.RcptDomainMax < 0 {
			t.Fatalf("ParseLimits(%q) = %+v: negative limit", s, l)
		}
		if !ok && l != (Limits{}) {
			t.Fatalf("ParseLimits(%q) = %+v but not ok", s, l)
		}
		if text := FormatLimits(l); text != "" {
			if back, ok := ParseLimits(text); !ok || back != l {
				t.Fatalf("round trip of %+v via %q = %+v, %v", l, text, back, ok)
			}
		}
	})
}

// FuzzDSNParams: the RFC 3461 parsers accept only what they can give back:
// an accepted NOTIFY prints to a value that parses to the same set, an
// accepted ORCPT's Param parses back to the same ORCPT, an ENVID is
// printable ASCII within its bound; a refusal is always 501 5.5.4.
func FuzzDSNParams(f *testing.F) {
	for _, s := range []string{
		"NEVER", "SUCCESS,FAILURE,DELAY", "never,delay", "SUCCESS,,", "rfc822;a@b", "rfc822;a+2Bb@c",
		`utf-8;j\x{F6}rg@x`, "utf-8;jörg@x", `utf-8;\x{10FFFF}`, "x400;a", "FULL", "hdrs", "QQ+20x", "+", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		check := func(err error) {
			if err != nil {
				wantReply(t, err, 501, "5.5.4")
			}
		}
		n, err := ParseNotify(v)
		check(err)
		if err == nil {
			if back, err := ParseNotify(n.String()); err != nil || back != n || n == 0 {
				t.Fatalf("NOTIFY %q = %v, printed %q, back %v, %v", v, n, n.String(), back, err)
			}
		}
		o, err := ParseORCPT(v)
		check(err)
		if err == nil {
			if back, err := ParseORCPT(o.Param()); err != nil || back != o {
				t.Fatalf("ORCPT %q = %+v, param %q, back %+v, %v", v, o, o.Param(), back, err)
			}
			if strings.ContainsAny(o.Field(false), "\r\n") || !utf8.ValidString(o.Field(true)) {
				t.Fatalf("ORCPT %q field %q", v, o.Field(true))
			}
		}
		e, err := ParseEnvID(v)
		check(err)
		if err == nil {
			if e == "" || len(e) > MaxEnvIDLen || !isPrintableASCII(e) {
				t.Fatalf("ENVID %q = %q", v, e)
			}
			if back, err := ParseEnvID(EncodeXtext(e)); err != nil || back != e {
				t.Fatalf("ENVID %q round trip %q, %v", e, back, err)
			}
		}
		r, err := ParseRet(v)
		check(err)
		if err == nil && r != RetFull && r != RetHdrs {
			t.Fatalf("RET %q = %q", v, r)
		}
	})
}
