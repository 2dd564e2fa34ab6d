package authres

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// FieldName is the header field this package writes (RFC 8601 §2.2).
const FieldName = "Authentication-Results"

// maxReason bounds the reason text of one result in the header.
const maxReason = 100

// formatHeader builds the Authentication-Results field for r, one result
// per line (RFC 8601 §2.2 resinfo), each made by go-msgauth's Format.
func (v *Verifier) formatHeader(r Result, c *Check) string {
	var rs []authres.Result
	if c.mailFrom.IsNull() {
		rs = append(rs, &authres.SPFResult{Value: authres.ResultValue(r.SPF), Reason: reason(c.spf.reason), Helo: c.helo})
	} else {
		rs = append(rs, &authres.SPFResult{Value: authres.ResultValue(r.SPF), Reason: reason(c.spf.reason), From: c.mailFrom.String()})
	}
	if heloIdentity(c.helo) && !c.mailFrom.IsNull() {
		rs = append(rs, &authres.SPFResult{Value: authres.ResultValue(r.HeloSPF), Reason: reason(c.heloSPF.reason), Helo: c.helo})
	}
	if len(r.DKIM) == 0 {
		rs = append(rs, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, s := range r.DKIM {
		// RFC 8601 §2.7.1: header.d, header.s and header.a (added by
		// RFC 8601) name the signature.
		rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(s.Result), Params: map[string]string{
			"reason": reason(s.Reason), "header.d": s.Domain, "header.s": s.Selector, "header.a": s.Algorithm,
		}})
	}
	rs = append(rs, &authres.DMARCResult{Value: authres.ResultValue(r.DMARC.Result), Reason: reason(r.DMARC.Reason), From: r.FromDomain})
	if r.IPRev != "" {
		rs = append(rs, &authres.IPRevResult{Value: authres.ResultValue(r.IPRev), Reason: reason(c.iprev.reason), IP: r.IP.String()})
	}
	var b strings.Builder
	b.WriteString(FieldName + ": " + v.id)
	for _, res := range rs {
		one := authres.Format(v.id, []authres.Result{res})
		b.WriteString(";\r\n\t")
		b.WriteString(strings.TrimSpace(strings.TrimPrefix(one, v.id+";")))
	}
	b.WriteString("\r\n")
	return b.String()
}

// reason makes free text safe for a quoted-string (go-msgauth quotes it but
// escapes only '"'): printable ASCII without '\\' and '"', bounded.
func reason(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxReason; i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\'')
		case c < ' ' || c > '~':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// IsOurs reports whether an Authentication-Results field value (after the
// colon) carries the authserv-id id (RFC 8601 §2.5, compared without
// regard to case). RFC 8601 §5: such fields arriving from outside are
// forgeries and are removed before ours is added. A value that cannot be
// read as far as its authserv-id is not ours.
func IsOurs(fieldValue, id string) bool {
	got, ok := authServID(fieldValue)
	return ok && id != "" && strings.EqualFold(got, id)
}

// authServID reads the authserv-id at the start of an Authentication-
// Results value: [CFWS] value, where value is a token or a quoted-string
// (RFC 8601 §2.2, RFC 2045 §5.1), comments nested up to a bound.
func authServID(s string) (string, bool) {
	i := skipCFWS(s, 0)
	if i < 0 || i >= len(s) {
		return "", false
	}
	if s[i] == '"' {
		var b strings.Builder
		for i++; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
				if i < len(s) {
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), b.Len() > 0
			default:
				b.WriteByte(s[i])
			}
		}
		return "", false
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t\r\n;()\"", rune(s[j])) {
		j++
	}
	return s[i:j], j > i
}

// maxCommentDepth bounds comment nesting (RFC 5322 §3.2.2 allows any).
const maxCommentDepth = 32

// skipCFWS returns the index after folding white space and comments from
// i, or -1 for an unterminated or too deeply nested comment.
func skipCFWS(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			if depth++; depth > maxCommentDepth {
				return -1
			}
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return i
		}
	}
	if depth > 0 {
		return -1
	}
	return i
}
