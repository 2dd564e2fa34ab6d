package smtp

// dsnparams.go: the parameters of the DSN extension (RFC 3461 §4): RET and
// ENVID on MAIL, NOTIFY and ORCPT on RCPT. The parsers are strict: a value
// outside the grammar is a 501 5.5.4, never silently dropped, because a
// client that asked for NOTIFY=NEVER and got failure notices anyway (or
// asked for SUCCESS and got nothing) cannot tell what went wrong.

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// RET values (RFC 3461 §4.3).
const (
	RetFull = "FULL"
	RetHdrs = "HDRS"
)

// Limits of RFC 3461.
const (
	// MaxEnvIDLen bounds ENVID (RFC 3461 §4.4: "MUST NOT exceed 100
	// characters", counted here after xtext decoding).
	MaxEnvIDLen = 100
	// MaxORCPTLen bounds the ORCPT value as sent, "addr-type;xtext"
	// (RFC 3461 §4.2: "MUST NOT exceed 500 characters").
	MaxORCPTLen = 500
)

// Notify is RCPT's NOTIFY parameter (RFC 3461 §4.1) as a set. The zero
// value means the parameter was absent: RFC 3461 §4.1 then leaves the
// choice to the server, and smtpkit reports failures and delays, as it
// always has.
type Notify uint8

const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// Failure reports whether a failure notice is wanted: asked for, or
// NOTIFY absent.
func (n Notify) Failure() bool { return n == 0 || n&NotifyFailure != 0 }

// Delay reports whether a delay notice is wanted: asked for, or NOTIFY
// absent.
func (n Notify) Delay() bool { return n == 0 || n&NotifyDelay != 0 }

// Success reports whether a success notice ("delivered", "relayed",
// "expanded") was asked for; it never is by default.
func (n Notify) Success() bool { return n&NotifySuccess != 0 }

// String is n as the NOTIFY value (RFC 3461 §4.1), "" for the zero value.
func (n Notify) String() string {
	if n&NotifyNever != 0 {
		return "NEVER"
	}
	var parts []string
	for _, k := range notifyKeywords[1:] {
		if n&k.bit != 0 {
			parts = append(parts, k.name)
		}
	}
	return strings.Join(parts, ",")
}

var notifyKeywords = [...]struct {
	name string
	bit  Notify
}{{"NEVER", NotifyNever}, {"SUCCESS", NotifySuccess}, {"FAILURE", NotifyFailure}, {"DELAY", NotifyDelay}}

// ParseNotify parses a NOTIFY value (RFC 3461 §4.1): "NEVER", or a
// comma-separated list of SUCCESS, FAILURE and DELAY, case-insensitive.
// NEVER with anything else, a repeated keyword, an empty element or an
// unknown keyword is an *Error 501 5.5.4.
func ParseNotify(v string) (Notify, error) {
	if v == "" {
		return 0, badParams("Bad NOTIFY parameter: empty")
	}
	var n Notify
	for word := range strings.SplitSeq(v, ",") {
		bit := Notify(0)
		for _, k := range notifyKeywords {
			if strings.EqualFold(word, k.name) {
				bit = k.bit
			}
		}
		switch {
		case bit == 0:
			return 0, badParams("Bad NOTIFY parameter: must be NEVER or SUCCESS, FAILURE, DELAY")
		case n&bit != 0:
			return 0, badParams("Bad NOTIFY parameter: repeated keyword")
		}
		n |= bit
	}
	if n&NotifyNever != 0 && n != NotifyNever {
		return 0, badParams("Bad NOTIFY parameter: NEVER must be alone")
	}
	return n, nil
}

// ParseRet parses a RET value (RFC 3461 §4.3), case-insensitive, and
// returns RetFull or RetHdrs; anything else is an *Error 501 5.5.4.
func ParseRet(v string) (string, error) {
	switch u := strings.ToUpper(v); u {
	case RetFull, RetHdrs:
		return u, nil
	}
	return "", badParams("Bad RET parameter: must be FULL or HDRS")
}

// ParseEnvID decodes an ENVID value (RFC 3461 §4.4): xtext whose decoded
// text is 1 to MaxEnvIDLen printable US-ASCII characters (graphic and
// space). Anything else is an *Error 501 5.5.4.
func ParseEnvID(v string) (string, error) {
	s, err := DecodeXtext(v)
	if err != nil {
		return "", badParams("Bad ENVID parameter: bad xtext")
	}
	if s == "" || len(s) > MaxEnvIDLen || !isPrintableASCII(s) {
		return "", badParams("Bad ENVID parameter: must be 1 to 100 printable ASCII characters")
	}
	return s, nil
}

// ORCPT is RCPT's original recipient (RFC 3461 §4.2): its address type,
// lower-cased ("rfc822", or "utf-8" of RFC 6533 §3), and the address
// decoded.
type ORCPT struct {
	Type string
	Addr string
}

// IsZero reports whether no ORCPT was given.
func (o ORCPT) IsZero() bool { return o.Type == "" }

// Param is o as the ORCPT value to send onwards: "rfc822;" and xtext, or
// "utf-8;" and utf-8-addr-xtext (RFC 6533 §3: \x{HEX} for what is not a
// QCHAR), so that it travels through any server, SMTPUTF8 or not.
func (o ORCPT) Param() string {
	if o.Type == ORCPTUTF8 {
		return ORCPTUTF8 + ";" + encodeUTF8Addr(o.Addr)
	}
	return o.Type + ";" + EncodeXtext(o.Addr)
}

// Field is o as the value of an Original-Recipient field (RFC 3464
// §2.3.1: address-type ";" generic-address, not xtext). A utf-8 address
// is written with \x{HEX} escapes unless utf8OK (a message/global-
// delivery-status part, RFC 6533 §6).
func (o ORCPT) Field(utf8OK bool) string {
	if o.Type == ORCPTUTF8 && !utf8OK {
		return o.Type + ";" + encodeUTF8Addr(o.Addr)
	}
	return o.Type + ";" + o.Addr
}

// Address types ORCPT accepts.
const (
	ORCPTRFC822 = "rfc822"
	ORCPTUTF8   = "utf-8"
)

// ParseORCPT parses an ORCPT value (RFC 3461 §4.2): addr-type ";" xtext,
// at most MaxORCPTLen characters. The addr-type is "rfc822" (xtext, the
// decoded address printable US-ASCII) or "utf-8" (RFC 6533 §3:
// utf-8-addr-unitext, QUCHARs and \x{HEX} escapes), case-insensitive;
// other types are refused, since smtpkit could neither report nor relay
// them faithfully. The address may not be empty. Anything else is an
// *Error 501 5.5.4.
func ParseORCPT(v string) (ORCPT, error) {
	if len(v) > MaxORCPTLen {
		return ORCPT{}, badParams("Bad ORCPT parameter: longer than 500 characters")
	}
	typ, enc, ok := strings.Cut(v, ";")
	if !ok || enc == "" {
		return ORCPT{}, badParams("Bad ORCPT parameter: must be addr-type;address")
	}
	var (
		addr string
		err  error
	)
	switch typ = strings.ToLower(typ); typ {
	case ORCPTRFC822:
		addr, err = DecodeXtext(enc)
		if err == nil && !isPrintableASCII(addr) {
			err = badParams("Bad ORCPT parameter: address not printable ASCII")
		}
	case ORCPTUTF8:
		addr, err = decodeUTF8Addr(enc)
	default:
		return ORCPT{}, badParams("Bad ORCPT parameter: address type must be rfc822 or utf-8")
	}
	if err != nil || addr == "" {
		return ORCPT{}, badParams("Bad ORCPT parameter: bad address encoding")
	}
	return ORCPT{Type: typ, Addr: addr}, nil
}

// RcptDSN is what the DSN extension adds to one recipient.
type RcptDSN struct {
	Notify Notify
	ORCPT  ORCPT
}

// Ret returns MAIL's RET parameter (ParseRet), "" when absent.
func (p Params) Ret() (string, error) {
	v, ok := p["RET"]
	if !ok {
		return "", nil
	}
	return ParseRet(v)
}

// EnvID returns MAIL's ENVID parameter decoded (ParseEnvID), "" when absent.
func (p Params) EnvID() (string, error) {
	v, ok := p["ENVID"]
	if !ok {
		return "", nil
	}
	return ParseEnvID(v)
}

// RcptDSN returns RCPT's NOTIFY and ORCPT parameters; absent ones are zero.
func (p Params) RcptDSN() (RcptDSN, error) {
	var d RcptDSN
	if v, ok := p["NOTIFY"]; ok {
		n, err := ParseNotify(v)
		if err != nil {
			return RcptDSN{}, err
		}
		d.Notify = n
	}
	if v, ok := p["ORCPT"]; ok {
		o, err := ParseORCPT(v)
		if err != nil {
			return RcptDSN{}, err
		}
		d.ORCPT = o
	}
	return d, nil
}

// decodeUTF8Addr decodes RFC 6533 §3 utf-8-addr-unitext: QUCHAR (a
// printable ASCII character but '+', '=' and '\', or non-ASCII UTF-8) and
// EmbeddedUnicodeChar "\x{" 2 to 6 upper-case hex digits "}" naming a
// Unicode scalar value. The result is valid UTF-8 without controls.
func decodeUTF8Addr(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", badParams("bad UTF-8")
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			r, n, ok := embeddedChar(s[i:])
			if !ok {
				return "", badParams("bad \\x{HEX}")
			}
			b.WriteRune(r)
			i += n
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r < 0xa0 { // C1 controls
				return "", badParams("control character")
			}
			b.WriteRune(r)
			i += n
		case c >= '!' && c <= '~' && c != '+' && c != '=':
			b.WriteByte(c)
			i++
		default:
			return "", badParams("bad character")
		}
	}
	out := b.String()
	for _, r := range out {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", badParams("control character")
		}
	}
	return out, nil
}

// embeddedChar parses "\x{HEX}" at the start of s (RFC 6533 §3 HEXPOINT:
// 2 to 6 upper-case hex digits, no leading zeros beyond two digits).
func embeddedChar(s string) (rune, int, bool) {
	if !strings.HasPrefix(s, `\x{`) {
		return 0, 0, false
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return 0, 0, false
	}
	hex := s[3:end]
	if len(hex) < 2 || len(hex) > 6 || (len(hex) > 2 && hex[0] == '0') {
		return 0, 0, false
	}
	for i := 0; i < len(hex); i++ {
		if unhexUpper(hex[i]) < 0 {
			return 0, 0, false
		}
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v > utf8.MaxRune || (v >= 0xd800 && v <= 0xdfff) {
		return 0, 0, false
	}
	return rune(v), end + 1, true
}

// encodeUTF8Addr is the inverse of decodeUTF8Addr in its ASCII-only form
// (utf-8-addr-xtext): every character that is not a QCHAR as \x{HEX}.
func encodeUTF8Addr(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
			continue
		}
		h := strings.ToUpper(strconv.FormatUint(uint64(r), 16))
		if len(h) < 2 {
			h = "0" + h
		}
		b.WriteString(`\x{` + h + "}")
	}
	return b.String()
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
