package mtasts

import (
	"errors"
	"fmt"
	"strings"
)

// recordVersion starts every MTA-STS TXT record (RFC 8461 §3.1).
const recordVersion = "v=STSv1"

// maxIDLen is the longest id= value (RFC 8461 §3.1: 1*32(ALPHA / DIGIT)).
const maxIDLen = 32

// ParseRecord parses the TXT record of _mta-sts.<domain> (RFC 8461 §3.1):
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field-delim = *WSP ";" *WSP
//	sts-version     = %s"v=STSv1"
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension   = sts-ext-name "=" sts-ext-value
//
// and returns its id. The version must come first and an id must be
// present; extension fields are checked for syntax and ignored. When a
// field appears twice, the first one counts.
func ParseRecord(txt string) (id string, err error) {
	fields := strings.Split(txt, ";")
	if trimWSP(fields[0]) != recordVersion || !strings.HasPrefix(txt, recordVersion) {
		return "", fmt.Errorf("record does not start with %q", recordVersion)
	}
	fields = fields[1:]
	if n := len(fields); n > 0 && trimWSP(fields[n-1]) == "" {
		fields = fields[:n-1] // the optional trailing delimiter
	}
	if len(fields) == 0 {
		return "", errors.New("no fields after the version")
	}
	found := false
	for _, f := range fields {
		f = trimWSP(f)
		name, value, ok := strings.Cut(f, "=")
		switch {
		case !ok || !isExtName(name):
			return "", fmt.Errorf("malformed field %q", f)
		case name == "id":
			if !isID(value) {
				return "", fmt.Errorf("malformed id %q (1 to %d letters and digits)", value, maxIDLen)
			}
			if !found {
				id, found = value, true
			}
		case !isExtValue(value):
			return "", fmt.Errorf("malformed value of field %q", name)
		}
	}
	if !found {
		return "", errors.New("no id field")
	}
	return id, nil
}

// isSTSRecord reports whether a TXT record claims to be an MTA-STS record;
// RFC 8461 §3.1 discards the others before counting.
func isSTSRecord(txt string) bool {
	rest, ok := strings.CutPrefix(txt, recordVersion)
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// trimWSP removes spaces and horizontal tabs (WSP, RFC 5234 B.1) at both ends.
func trimWSP(s string) string { return strings.Trim(s, " \t") }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// isExtName checks (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."),
// the extension name of both the record (§3.1) and the policy (§3.2).
func isExtName(s string) bool {
	if len(s) == 0 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isExtValue checks 1*(%x21-3A / %x3C / %x3E-7E): printable ASCII without
// space, ";" and "=" (§3.1).
func isExtValue(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}
