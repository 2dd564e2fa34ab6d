package smtp

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Size limits of RFC 5321 §4.5.3.1.
const (
	MaxLocalPartLen = 64  // §4.5.3.1.1, octets as written
	MaxDomainLen    = 255 // §4.5.3.1.2
	MaxLabelLen     = 63  // RFC 1035 §2.3.4, for ASCII labels
	MaxPathLen      = 256 // §4.5.3.1.3, including "<" and ">"
)

// Address is a mailbox, RFC 5321 §4.1.2 Mailbox, extended by RFC 6531 §3.3
// to UTF-8 local parts and U-label domains.
type Address struct {
	Local  string // local part as written; a quoted string is unquoted: `"a b"` → `a b`
	Domain string // domain as written (ASCII or UTF-8 U-labels), or an address literal "[127.0.0.1]"
}

// IsNull reports the null reverse-path "<>" (RFC 5321 §4.5.5).
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// DomainLower is the domain with ASCII letters lower-cased, for lookups:
// domains are case-insensitive (RFC 5321 §2.4). U-labels are left as they
// are; mapping them is IDNA's job.
func (a Address) DomainLower() string { return lowerASCII(a.Domain) }

// IsASCII reports whether the address is all ASCII; an address that is not
// may only be used in a transaction with SMTPUTF8 (RFC 6531 §3.2).
func (a Address) IsASCII() bool { return isASCII(a.Local) && isASCII(a.Domain) }

// RoutingTrick reports a local part holding '%', '!' or '@': the percent hack
// (RFC 1123 §5.2.16), a UUCP bang path, or a quoted relay attempt such as
// `"victim@elsewhere"@us`. Servers should refuse to relay such addresses
// rather than interpret them (RFC 5321 §3.6.1, §3.9 relaying).
func (a Address) RoutingTrick() bool { return strings.ContainsAny(a.Local, "%!@") }

// String formats the address as local@domain, quoting the local part when it
// is not a dot-string (RFC 5321 §4.1.2: Quoted-string only when needed).
// The null address is "", and the special "Postmaster" without a domain is
// just the local part.
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	local := a.Local
	if !isDotString(local) {
		local = quoteLocal(local)
	}
	if a.Domain == "" {
		return local
	}
	return local + "@" + a.Domain
}

// AppendTo appends the address as String formats it to b.
func (a Address) AppendTo(b []byte) []byte {
	if isDotString(a.Local) {
		b = append(b, a.Local...)
	} else if !a.IsNull() {
		b = append(b, quoteLocal(a.Local)...)
	}
	if a.Domain != "" {
		b = append(append(b, '@'), a.Domain...)
	}
	return b
}

// quoteLocal makes a Quoted-string, escaping only '"' and '\'.
func quoteLocal(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Path is a reverse-path or forward-path (RFC 5321 §4.1.2).
type Path struct {
	Addr Address
	// SourceRoute is set when the path had an A-d-l source route
	// ("<@a,@b:user@c>"); RFC 5321 §4.1.2 says servers must accept and
	// should ignore it (Appendix C), so it was stripped.
	SourceRoute bool
}

// addrError is a reason for refusing an address; it is our own text, never
// the peer's, so it is safe to put in a reply.
type addrError string

func (e addrError) Error() string { return string(e) }

// ParseAddress parses a mailbox "local@domain" without angle brackets, with
// RFC 5321 §4.1.2 syntax: a dot-string or quoted-string local part of at most
// 64 octets, and a domain of at most 255 octets with labels of at most 63, or
// an address literal [IPv4] or [IPv6:...] (§4.1.3). UTF-8 (valid only) is
// accepted in both parts as RFC 6531 §3.3 allows; the caller decides with
// IsASCII whether that is acceptable. Errors are *Error 501 5.1.3.
func ParseAddress(s string) (Address, error) {
	a, err := parseMailbox(s)
	if err != nil {
		return Address{}, Wrap(R(CodeSyntaxParams, EnhBadSyntaxDest, "Bad address syntax: "+err.Error()), err)
	}
	return a, nil
}

func parseMailbox(s string) (Address, error) {
	if !utf8.ValidString(s) {
		return Address{}, addrError("invalid UTF-8")
	}
	local, rest, err := splitLocal(s)
	if err != nil {
		return Address{}, err
	}
	if rest == "" || rest[0] != '@' {
		return Address{}, addrError("missing @domain")
	}
	domain := rest[1:]
	if err := checkDomainOrLiteral(domain); err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// splitLocal takes the local part off the front of s and returns it
// unquoted, along with the rest of s.
func splitLocal(s string) (local, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		local, n, err := unquote(s)
		if err != nil {
			return "", "", err
		}
		if n > MaxLocalPartLen {
			return "", "", addrError("local part too long")
		}
		return local, s[n:], nil
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return "", "", addrError("missing @domain")
	}
	local = s[:at]
	if !isDotString(local) {
		return "", "", addrError("bad local part")
	}
	if len(local) > MaxLocalPartLen {
		return "", "", addrError("local part too long")
	}
	return local, s[at:], nil
}

// unquote reads a Quoted-string at the start of s (RFC 5321 §4.1.2
// qtextSMTP / quoted-pairSMTP, RFC 6531 UTF8-non-ascii) and returns its
// content and the number of octets it took.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) || s[i+1] < 32 || s[i+1] > 126 {
				return "", 0, addrError("bad quoted-pair in local part")
			}
			i++
			b.WriteByte(s[i])
		case c >= 32 && c <= 126 || c >= 0x80:
			b.WriteByte(c)
		default:
			return "", 0, addrError("control character in local part")
		}
	}
	return "", 0, addrError("unterminated quoted local part")
}

// isDotString reports RFC 5321 Dot-string: Atom *("." Atom), with UTF-8
// atext as RFC 6531 §3.3 allows.
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext is RFC 5322 §3.2.3 atext plus any non-ASCII octet (the caller has
// checked that the string is valid UTF-8).
func isAtext(c byte) bool {
	return isAlnum(c) || c >= 0x80 || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func checkDomainOrLiteral(d string) error {
	if strings.HasPrefix(d, "[") {
		return checkAddressLiteral(d)
	}
	return checkDomain(d)
}

// checkDomain checks RFC 5321 Domain: sub-domain *("." sub-domain), where
// sub-domain = Let-dig [Ldh-str], or a U-label (RFC 6531 §3.3). A U-label
// here is any label with non-ASCII octets that does not begin or end with a
// hyphen; full IDNA2008 validation is left to whoever converts it.
func checkDomain(d string) error {
	if d == "" {
		return addrError("empty domain")
	}
	if len(d) > MaxDomainLen {
		return addrError("domain too long")
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return addrError("empty label in domain")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return addrError("domain label begins or ends with a hyphen")
		}
		ascii := true
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 0x80:
				ascii = false
			case !isAlnum(c) && c != '-':
				return addrError("bad character in domain")
			}
		}
		if ascii && len(label) > MaxLabelLen {
			return addrError("domain label too long")
		}
	}
	return nil
}

// checkAddressLiteral checks RFC 5321 §4.1.3 address-literal: "[" IPv4 "]"
// or "[IPv6:" IPv6-addr "]". General-address-literal is refused: no tag
// other than IPv6 has been standardized.
func checkAddressLiteral(d string) error {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return addrError("unterminated address literal")
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		ip, err := netip.ParseAddr(inner[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return addrError("bad IPv6 address literal")
		}
		return nil
	}
	if !isIPv4Literal(inner) {
		return addrError("bad address literal")
	}
	return nil
}

// isIPv4Literal checks IPv4-address-literal = Snum 3("." Snum), where
// Snum = 1*3DIGIT with a value of 0 to 255 (leading zeros allowed).
func isIPv4Literal(s string) bool {
	parts := 0
	for part := range strings.SplitSeq(s, ".") {
		parts++
		if part == "" || len(part) > 3 {
			return false
		}
		v := 0
		for i := 0; i < len(part); i++ {
			if !isDigit(part[i]) {
				return false
			}
			v = v*10 + int(part[i]-'0')
		}
		if v > 255 {
			return false
		}
	}
	return parts == 4
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// errNoPath is the reason for a missing or unterminated "<...>".
var errNoPath = addrError("address must be in angle brackets")

// cutPath takes "<...>" off the front of s, honouring quoted strings (a
// quoted local part may contain '>'), and returns the text between the
// brackets and what follows the '>'.
func cutPath(s string) (inner, rest string, err error) {
	if !strings.HasPrefix(s, "<") {
		return "", "", errNoPath
	}
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			if i+1 > MaxPathLen {
				return "", "", addrError("path too long")
			}
			return s[1:i], s[i+1:], nil
		}
	}
	if len(s) > MaxPathLen {
		return "", "", addrError("path too long")
	}
	return "", "", errNoPath
}

// parseRoute strips an A-d-l source route, "@a,@b:" (RFC 5321 §4.1.2), off
// the front of inner, checking each domain.
func parseRoute(inner string) (mailbox string, routed bool, err error) {
	if !strings.HasPrefix(inner, "@") {
		return inner, false, nil
	}
	colon := strings.IndexByte(inner, ':')
	if colon < 0 {
		return "", false, addrError("bad source route")
	}
	for at := range strings.SplitSeq(inner[:colon], ",") {
		if !strings.HasPrefix(at, "@") {
			return "", false, addrError("bad source route")
		}
		if err := checkDomain(at[1:]); err != nil {
			return "", false, addrError("bad source route domain")
		}
	}
	return inner[colon+1:], true, nil
}

// ParseMail parses the argument of MAIL (RFC 5321 §4.1.1.2):
// "FROM:" Reverse-path [SP Mail-parameters]. "FROM:" is matched
// case-insensitively; one space after the colon is tolerated because common
// clients send it; the angle brackets are required, and "<>" is the null
// reverse-path. A source route is stripped and reported in Path.SourceRoute.
// The Params are nil when the command has none.
//
// utf8 says whether the server offers SMTPUTF8. A non-ASCII reverse-path
// needs that and the SMTPUTF8 parameter on this very command (RFC 6531 §3.4);
// otherwise the error is 553 5.6.7. Other errors: a missing "FROM:" is
// 501 5.5.4, bad address syntax or a path over 256 octets (§4.5.3.1.3) is
// 501 5.1.7, bad parameters 501 5.5.4.
func ParseMail(arg string, utf8 bool) (Path, Params, error) {
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return Path{}, nil, E(CodeSyntaxParams, EnhBadParams, "Syntax: MAIL FROM:<address> [parameters]")
	}
	inner, params, err := parsePathArg(rest, EnhBadSender)
	if err != nil {
		return Path{}, nil, err
	}
	if inner == "" {
		return Path{}, params, nil
	}
	p, err := parsePathInner(inner, EnhBadSender, "sender")
	if err != nil {
		return Path{}, nil, err
	}
	_, asked := params["SMTPUTF8"]
	if err := checkUTF8(p.Addr, params, utf8 && asked); err != nil {
		return Path{}, nil, err
	}
	return p, params, nil
}

// ParseRcpt parses the argument of RCPT (RFC 5321 §4.1.1.3):
// "TO:" Forward-path [SP Rcpt-parameters], with the same tolerances as
// ParseMail. "<Postmaster>" without a domain (any case) is accepted and
// returned as Address{Local: "Postmaster"}; the null path is refused.
//
// utf8 says whether the transaction uses SMTPUTF8 (MAIL had the parameter);
// a non-ASCII forward-path without it is 553 5.6.7. A missing "TO:" is
// 501 5.5.4, bad syntax or length 501 5.1.3, bad parameters 501 5.5.4.
func ParseRcpt(arg string, utf8 bool) (Path, Params, error) {
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return Path{}, nil, E(CodeSyntaxParams, EnhBadParams, "Syntax: RCPT TO:<address> [parameters]")
	}
	inner, params, err := parsePathArg(rest, EnhBadSyntaxDest)
	if err != nil {
		return Path{}, nil, err
	}
	if strings.EqualFold(inner, "postmaster") {
		// RFC 5321 §4.1.1.3: "<Postmaster>" must be accepted.
		p := Path{Addr: Address{Local: "Postmaster"}}
		if err := checkUTF8(p.Addr, params, utf8); err != nil {
			return Path{}, nil, err
		}
		return p, params, nil
	}
	if inner == "" {
		return Path{}, nil, E(CodeSyntaxParams, EnhBadSyntaxDest, "Bad recipient address syntax: null path not allowed")
	}
	p, err := parsePathInner(inner, EnhBadSyntaxDest, "recipient")
	if err != nil {
		return Path{}, nil, err
	}
	if err := checkUTF8(p.Addr, params, utf8); err != nil {
		return Path{}, nil, err
	}
	return p, params, nil
}

// parsePathArg handles what follows "FROM:" or "TO:": an optional space,
// the bracketed path, and optional parameters after a space.
func parsePathArg(rest string, enh Enhanced) (inner string, params Params, err error) {
	rest = strings.TrimPrefix(rest, " ")
	inner, after, err := cutPath(rest)
	if err != nil {
		return "", nil, Wrap(R(CodeSyntaxParams, enh, "Bad address syntax: "+err.Error()), err)
	}
	if after != "" && after[0] != ' ' {
		return "", nil, E(CodeSyntaxParams, enh, "Bad address syntax: text after '>'")
	}
	if after == "" {
		return inner, nil, nil // no parameters: no map (this is every plain MAIL and RCPT)
	}
	params, err = ParseParams(after)
	if err != nil {
		return "", nil, err
	}
	return inner, params, nil
}

// parsePathInner parses the text between the brackets of a non-null path.
func parsePathInner(inner string, enh Enhanced, what string) (Path, error) {
	mailbox, routed, err := parseRoute(inner)
	if err == nil {
		var a Address
		if a, err = parseMailbox(mailbox); err == nil {
			return Path{Addr: a, SourceRoute: routed}, nil
		}
	}
	return Path{}, Wrap(R(CodeSyntaxParams, enh, "Bad "+what+" address syntax: "+err.Error()), err)
}

// checkUTF8 applies RFC 6531 §3.2: without SMTPUTF8, addresses and
// parameter values must be ASCII.
func checkUTF8(a Address, params Params, utf8 bool) error {
	if utf8 {
		return nil
	}
	if !a.IsASCII() {
		return E(CodeMailboxName, EnhConversion, "Address needs SMTPUTF8")
	}
	for _, v := range params {
		if !isASCII(v) {
			return E(CodeSyntaxParams, EnhBadParams, "Non-ASCII parameter value needs SMTPUTF8")
		}
	}
	return nil
}

// cutPrefixFold is strings.CutPrefix with ASCII case folding.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
