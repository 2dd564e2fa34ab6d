package compose

import (
	"encoding/base64"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Line lengths of RFC 5322 §2.1.1: lines SHOULD be at most 78 octets and
// MUST be at most 998, both without the CRLF.
const (
	foldAt  = 78
	maxLine = 998
)

// FormatField renders an unstructured header field (RFC 5322 §3.2.5) such
// as Subject: "Name: value" CRLF, folded at spaces. A value that is not
// plain printable ASCII (non-ASCII, control characters other than tab, or
// text that would read as an encoded-word) or that cannot be folded within
// 998 octets is written as RFC 2047 encoded-words in UTF-8: Q encoding when
// it is mostly ASCII, B otherwise.
func FormatField(name, value string) string {
	if !needsEncoding(value) {
		if s, ok := fold(name, value); ok {
			return s
		}
	}
	s, _ := fold(name, encodeWords(value))
	return s
}

// FormatAddressField renders an address list field (From, To, Cc,
// RFC 5322 §3.6.2-3): the addresses separated by ", ", display names quoted
// or encoded as net/mail does (RFC 2047 §5 phrase encoded-words), folded at
// spaces. An empty list gives "".
func FormatAddressField(name string, addrs []mail.Address) string {
	if len(addrs) == 0 {
		return ""
	}
	parts := make([]string, len(addrs))
	for i := range addrs {
		parts[i] = addrs[i].String()
	}
	s, ok := fold(name, strings.Join(parts, ", "))
	if !ok {
		// Only an address itself longer than a line gets here; RFC 5321
		// §4.5.3.1.3 caps paths at 256 octets, so this is a broken input
		// that is still written rather than silently dropped.
		return name + ": " + strings.Join(parts, ", ") + "\r\n"
	}
	return s
}

// needsEncoding reports whether an unstructured value cannot be written
// as is: it has octets outside printable ASCII (tab allowed) or contains
// "=?", which a reader would take for the start of an encoded-word.
func needsEncoding(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 32 && c != '\t') || c >= 127 {
			return true
		}
	}
	return strings.Contains(v, "=?")
}

// encodeWords encodes v as UTF-8 encoded-words (RFC 2047 §2) of at most
// 75 octets each, separated by single spaces: Q encoding when v is mostly
// ASCII, B otherwise. Words end on character boundaries (§5 rule 3). Unlike
// mime.WordEncoder it always encodes, because the callers need that for
// ASCII that contains controls or "=?".
func encodeWords(v string) string {
	ascii := 0
	for i := 0; i < len(v); i++ {
		if v[i] < 128 {
			ascii++
		}
	}
	q := ascii*3 >= len(v)*2
	prefix := "=?utf-8?b?"
	if q {
		prefix = "=?utf-8?q?"
	}
	const room = maxWord - len("=?utf-8?q?") - len("?=")
	var words []string
	var cur []byte // raw octets of the current word
	size := 0      // encoded length of cur
	flush := func() {
		if q {
			words = append(words, prefix+qEncode(cur)+"?=")
		} else {
			words = append(words, prefix+base64.StdEncoding.EncodeToString(cur)+"?=")
		}
		cur, size = cur[:0], 0
	}
	for i := 0; i < len(v); {
		_, n := utf8.DecodeRuneInString(v[i:])
		r := []byte(v[i : i+n])
		grow := len(qEncode(r))
		if !q {
			grow = base64.StdEncoding.EncodedLen(len(cur)+n) - size
		}
		if size+grow > room && len(cur) > 0 {
			flush()
			if !q {
				grow = base64.StdEncoding.EncodedLen(n)
			}
		}
		cur = append(cur, r...)
		size += grow
		i += n
	}
	if len(cur) > 0 || len(words) == 0 {
		flush()
	}
	return strings.Join(words, " ")
}

// maxWord is the longest encoded-word (RFC 2047 §2).
const maxWord = 75

// qEncode is the Q encoding of RFC 2047 §4.2, keeping literal only the
// characters allowed everywhere (§5 rule 3): letters, digits and "!*+-/";
// space becomes "_".
func qEncode(b []byte) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == ' ':
			s.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
			s.WriteByte(c)
		default:
			s.WriteByte('=')
			s.WriteByte(hex[c>>4])
			s.WriteByte(hex[c&15])
		}
	}
	return s.String()
}

// fold writes "name: value" CRLF, breaking lines at the spaces of value
// so that lines stay within 78 octets where the text allows
// (RFC 5322 §2.2.3): a fold puts CRLF before a space. It never folds before
// a space that is followed by another space, so no line is made of
// whitespace only, and unfolding (removing each CRLF) gives back the value
// exactly. ok is false when a line would exceed 998 octets.
func fold(name, value string) (string, bool) {
	var b strings.Builder
	words := strings.Split(value, " ")
	line := len(name) + 2 + len(words[0])
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(words[0])
	ok := line <= maxLine
	started := !blank(words[0]) // a word is on the field's lines already
	for _, w := range words[1:] {
		// Only a word with something visible starts a new line: a line of
		// nothing but white space is not a valid continuation (RFC 5322
		// §3.2.2, obsolete syntax).
		if !blank(w) && line+1+len(w) > foldAt && started {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		line += 1 + len(w)
		ok = ok && line <= maxLine
		started = started || !blank(w)
	}
	b.WriteString("\r\n")
	return b.String(), ok
}

// blank reports a word of nothing but tabs (fold splits at spaces).
func blank(w string) bool { return strings.Trim(w, "\t") == "" }

// Unfold undoes folding (RFC 5322 §2.2.3): every CRLF followed by
// whitespace is removed.
func Unfold(s string) string {
	return strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t").Replace(s)
}
