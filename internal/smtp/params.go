package smtp

import (
	"strings"
	"unicode/utf8"
)

// Params are the ESMTP parameters of MAIL or RCPT (RFC 5321 §4.1.2
// esmtp-param = esmtp-keyword ["=" esmtp-value]), keyed by the upper-cased
// keyword. A parameter without "=value" maps to "".
type Params map[string]string

// MaxParams bounds the number of parameters on one command; real clients
// send at most a handful (SIZE, BODY, SMTPUTF8, AUTH, RET, ENVID...).
const MaxParams = 32

// maxSizeDigits is RFC 1870 §3: size-value ::= 1*20DIGIT.
const maxSizeDigits = 20

// Body types of RFC 6152 §2 and RFC 3030 §3.
const (
	Body7Bit       = "7BIT"
	Body8BitMIME   = "8BITMIME"
	BodyBinaryMIME = "BINARYMIME"
)

func badParams(text string) *Error { return E(CodeSyntaxParams, EnhBadParams, text) }

// ParseParams parses space-separated ESMTP parameters (RFC 5321 §4.1.2):
// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") and esmtp-value =
// 1*(%d33-60 / %d62-126), extended with UTF-8 by RFC 6531 §3.3 (only valid
// UTF-8 is accepted; whether the transaction allows it is the caller's
// check). Runs of spaces are tolerated. Keywords are case-insensitive and
// returned upper-cased. A duplicate keyword, bad syntax or more than
// MaxParams parameters is an *Error 501 5.5.4. The result is never nil.
func ParseParams(s string) (Params, error) {
	p := Params{}
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		key, value, hasValue := strings.Cut(tok, "=")
		if !isKeyword(key) {
			return nil, badParams("Syntax error in parameters: bad keyword")
		}
		if hasValue && !isParamValue(value) {
			return nil, badParams("Syntax error in parameters: bad value")
		}
		key = strings.ToUpper(key)
		if _, dup := p[key]; dup {
			return nil, badParams("Duplicate parameter " + key)
		}
		if len(p) == MaxParams {
			return nil, badParams("Too many parameters")
		}
		p[key] = value
	}
	return p, nil
}

func isKeyword(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isParamValue(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c == '=' || c == 0x7f {
			return false
		}
	}
	return true
}

// Size returns the RFC 1870 SIZE parameter: ok is false when it is absent.
// The value is 1 to 20 digits; a value beyond int64 saturates at the
// largest int64, which any limit will refuse as too big. A missing or bad
// value is an *Error 501 5.5.4.
func (p Params) Size() (n int64, ok bool, err error) {
	v, ok := p["SIZE"]
	if !ok {
		return 0, false, nil
	}
	if v == "" || len(v) > maxSizeDigits {
		return 0, true, badParams("Bad SIZE parameter")
	}
	const maxInt64 = 1<<63 - 1
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, true, badParams("Bad SIZE parameter")
		}
		d := int64(v[i] - '0')
		if n > (maxInt64-d)/10 {
			n = maxInt64
			for i++; i < len(v); i++ {
				if !isDigit(v[i]) {
					return 0, true, badParams("Bad SIZE parameter")
				}
			}
			break
		}
		n = n*10 + d
	}
	return n, true, nil
}

// Body returns the BODY parameter upper-cased: "7BIT" or "8BITMIME"
// (RFC 6152 §2) or "BINARYMIME" (RFC 3030 §3), or "" when absent. Whether
// BINARYMIME is acceptable (it needs CHUNKING) is the session's call. Any
// other value is an *Error 501 5.5.4.
func (p Params) Body() (string, error) {
	v, ok := p["BODY"]
	if !ok {
		return "", nil
	}
	switch u := strings.ToUpper(v); u {
	case Body7Bit, Body8BitMIME, BodyBinaryMIME:
		return u, nil
	}
	return "", badParams("Bad BODY parameter: must be 7BIT, 8BITMIME or BINARYMIME")
}

// DecodeXtext decodes RFC 3461 §4 xtext: xchar is '!' to '~' except '+'
// and '='; hexchar is '+' and two upper-case hex digits. It is used by the
// MAIL parameter AUTH=<mailbox> (RFC 4954 §5) and by ENVID and ORCPT. Bad
// xtext is an *Error 501 5.5.4.
func DecodeXtext(s string) (string, error) {
	if strings.IndexByte(s, '+') < 0 {
		for i := 0; i < len(s); i++ {
			if !isXchar(s[i]) {
				return "", badParams("Bad xtext")
			}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' {
			if i+2 >= len(s) {
				return "", badParams("Bad xtext: short hexchar")
			}
			hi, lo := unhexUpper(s[i+1]), unhexUpper(s[i+2])
			if hi < 0 || lo < 0 {
				return "", badParams("Bad xtext: bad hexchar")
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
			continue
		}
		if !isXchar(c) {
			return "", badParams("Bad xtext")
		}
		b = append(b, c)
	}
	return string(b), nil
}

// EncodeXtext encodes s as RFC 3461 §4 xtext, for the client side of the
// AUTH=, ENVID and ORCPT parameters: every octet that is not an xchar
// becomes "+" and two upper-case hex digits.
func EncodeXtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isXchar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func isXchar(c byte) bool { return c >= '!' && c <= '~' && c != '+' && c != '=' }

func unhexUpper(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
