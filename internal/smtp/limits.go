package smtp

import (
	"strconv"
	"strings"
)

// Limits are the limits a server announces with the LIMITS extension
// (RFC 9422). A zero field means the server did not announce that limit
// (or announced it in a form we do not trust): the client then assumes
// nothing beyond RFC 5321.
type Limits struct {
	// MailMax is the number of transactions the server allows in one
	// session (RFC 9422 §4.1 MAILMAX).
	MailMax int
	// RcptMax is the number of recipients the server accepts in one
	// transaction (RFC 9422 §4.2 RCPTMAX).
	RcptMax int
	// RcptDomainMax is the number of distinct recipient domains the
	// server accepts in one transaction (RFC 9422 §4.3 RCPTDOMAINMAX).
	RcptDomainMax int
}

// maxLimitValue bounds a numeric limit value: RFC 9422 §4 gives the
// registered limits 1*DIGIT values; anything with more than nine digits
// is treated as "no limit" rather than risking overflow.
const maxLimitDigits = 9

// maxLimits bounds how many limit tokens one LIMITS line may carry before
// the rest are ignored (a peer controls the EHLO reply's length).
const maxLimits = 32

// ParseLimits reads the parameters of a LIMITS EHLO keyword (RFC 9422 §4):
//
//	limits-param = limit *(SP limit)
//	limit        = limit-name "=" limit-value
//	limit-name   = 1*(ALPHA / DIGIT / "-" / "_")   ; case-insensitive
//	limit-value  = 1*(%x21-7E)
//
// Unknown limit names are ignored, as §4 requires of clients. A known
// limit with a value that is not a positive decimal number, or given a
// second time, is ignored as well (the first well-formed value wins): a
// client that cannot understand a limit must carry on as if it were not
// announced. ok is false when the parameter text as a whole does not
// follow the grammar (then every limit in it is ignored).
func ParseLimits(params string) (l Limits, ok bool) {
	if params == "" {
		return Limits{}, false
	}
	seen := map[string]bool{}
	for i, tok := range strings.Split(params, " ") {
		if i >= maxLimits {
			break
		}
		name, value, found := strings.Cut(tok, "=")
		if !found || !limitName(name) || !limitValue(value) {
			return Limits{}, false
		}
		name = strings.ToUpper(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		n, good := limitNumber(value)
		if !good {
			continue
		}
		switch name {
		case "MAILMAX":
			l.MailMax = n
		case "RCPTMAX":
			l.RcptMax = n
		case "RCPTDOMAINMAX":
			l.RcptDomainMax = n
		}
	}
	return l, true
}

// FormatLimits is the LIMITS keyword's parameter text for l, naming only
// the limits that are set, in the order of the IANA registry.
func FormatLimits(l Limits) string {
	var parts []string
	if l.RcptMax > 0 {
		parts = append(parts, "RCPTMAX="+strconv.Itoa(l.RcptMax))
	}
	if l.MailMax > 0 {
		parts = append(parts, "MAILMAX="+strconv.Itoa(l.MailMax))
	}
	if l.RcptDomainMax > 0 {
		parts = append(parts, "RCPTDOMAINMAX="+strconv.Itoa(l.RcptDomainMax))
	}
	return strings.Join(parts, " ")
}

func limitName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func limitValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// limitNumber is a positive decimal value of at most maxLimitDigits digits.
func limitNumber(s string) (int, bool) {
	if len(s) > maxLimitDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n > 0
}
