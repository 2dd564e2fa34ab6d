package mtasts

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Mode is what a policy asks of senders (RFC 8461 §3.2, §5).
type Mode string

// The policy modes.
const (
	// Enforce: deliver only to MX hosts matching an "mx" pattern, over TLS
	// with a certificate valid for the MX name (§5).
	Enforce Mode = "enforce"
	// Testing: deliver as without a policy, but report failures (TLS-RPT).
	Testing Mode = "testing"
	// None: as if the domain had no policy; published to withdraw one (§8.3).
	None Mode = "none"
)

// MaxMaxAge is the largest max_age a policy may have (RFC 8461 §3.2:
// "up to 31557600", about one year); larger values are capped to it.
const MaxMaxAge = 31557600 * time.Second

// Policy is a domain's MTA-STS policy (RFC 8461 §3.2) and what the cache
// knows about it. A Policy returned by a Cache is shared: do not modify it.
type Policy struct {
	Domain  string        // the policy domain, lower case
	ID      string        // the TXT record's id= when the policy was fetched (§3.1)
	Mode    Mode          // enforce, testing or none
	MX      []string      // "mx" patterns as published, lower case, no trailing dot
	MaxAge  time.Duration // max_age, capped at MaxMaxAge
	Fetched time.Time     // when the policy was fetched
	// Text holds the policy's lines without line ends, blank lines left
	// out: the policy-string of TLS-RPT reports (RFC 8460 §4.4).
	Text []string
}

// Expires is when the policy stops applying: Fetched + MaxAge (§3.2, §5.1).
func (p *Policy) Expires() time.Time { return p.Fetched.Add(p.MaxAge) }

// Matches reports whether mxHost is allowed by one of the policy's "mx"
// patterns (RFC 8461 §4.1): an exact match, or "*.example.com", which
// stands for exactly one label in the leftmost position
// ("mx1.example.com", but neither "example.com" nor "a.mx1.example.com").
// Names compare case-insensitively; a trailing dot is ignored.
func (p *Policy) Matches(mxHost string) bool {
	host, ok := asciiLower(strings.TrimSuffix(mxHost, "."))
	if !ok || host == "" {
		return false
	}
	for _, pat := range p.MX {
		if suffix, ok := strings.CutPrefix(pat, "*"); ok {
			label, found := strings.CutSuffix(host, suffix)
			if found && label != "" && !strings.Contains(label, ".") {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}

// asciiLower lower-cases an ASCII name; a name with other bytes is
// refused (ok false), as no pattern (A-labels, §3.2) can match it and
// Unicode case folding would let "\u212a" (Kelvin) pass for "k".
func asciiLower(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// clone returns a deep copy of p.
func (p *Policy) clone() *Policy {
	q := *p
	q.MX = slices.Clone(p.MX)
	q.Text = slices.Clone(p.Text)
	return &q
}

// ParsePolicy parses a policy body (RFC 8461 §3.2): "key: value" lines
// ended by LF or CRLF. version ("STSv1"), mode and max_age are required,
// and at least one mx unless the mode is none; mx may repeat, and for the
// other fields the first occurrence counts. Unknown fields are checked
// for syntax (§3.2 sts-policy-extension) and ignored; blank lines and
// white space around a line are tolerated. Domain, ID and Fetched are left
// for the caller.
func ParsePolicy(body []byte) (Policy, error) {
	var p Policy
	var version, maxAge bool
	lines := strings.Split(string(body), "\n")
	for n, line := range lines {
		line = trimWSP(strings.TrimSuffix(line, "\r"))
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		value = trimWSP(value)
		if !ok || !isExtName(key) || !isPolicyValue(value) {
			return Policy{}, fmt.Errorf("line %d: not a \"key: value\" field", n+1)
		}
		p.Text = append(p.Text, key+": "+value)
		switch key {
		case "version":
			if !version && value != "STSv1" {
				return Policy{}, fmt.Errorf("line %d: version %q, want STSv1", n+1, value)
			}
			version = true
		case "mode":
			if p.Mode != "" {
				continue
			}
			switch m := Mode(value); m {
			case Enforce, Testing, None:
				p.Mode = m
			default:
				return Policy{}, fmt.Errorf("line %d: unknown mode %q", n+1, value)
			}
		case "max_age":
			if maxAge {
				continue
			}
			d, err := parseMaxAge(value)
			if err != nil {
				return Policy{}, fmt.Errorf("line %d: %w", n+1, err)
			}
			p.MaxAge, maxAge = d, true
		case "mx":
			pat, ascii := asciiLower(strings.TrimSuffix(value, "."))
			if !ascii || !isMXPattern(pat) {
				return Policy{}, fmt.Errorf("line %d: malformed mx pattern %q", n+1, value)
			}
			if !slices.Contains(p.MX, pat) {
				p.MX = append(p.MX, pat)
			}
		}
	}
	switch {
	case !version:
		return Policy{}, errors.New("no version field")
	case p.Mode == "":
		return Policy{}, errors.New("no mode field")
	case !maxAge:
		return Policy{}, errors.New("no max_age field")
	case len(p.MX) == 0 && p.Mode != None:
		return Policy{}, fmt.Errorf("mode %s without mx fields", p.Mode)
	}
	return p, nil
}

// parseMaxAge reads 1*10(DIGIT) seconds, capped at MaxMaxAge.
func parseMaxAge(s string) (time.Duration, error) {
	if len(s) == 0 || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("malformed max_age %q (1 to 10 digits)", s)
	}
	secs, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed max_age %q: %w", s, err)
	}
	return time.Duration(min(secs, uint64(MaxMaxAge/time.Second))) * time.Second, nil
}

// isPolicyValue checks sts-policy-ext-value (§3.2): printable ASCII or
// UTF-8, inner spaces allowed, no control characters.
func isPolicyValue(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// isMXPattern checks ["*."] Domain (§3.2), lower case, no trailing dot:
// labels of letters, digits and hyphens (RFC 5321 §4.1.2), neither
// starting nor ending with a hyphen, at most 63 octets, 253 in all.
func isMXPattern(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	return isDomain(s)
}

// isDomain checks a lower-case host name (A-labels) without trailing dot.
func isDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
