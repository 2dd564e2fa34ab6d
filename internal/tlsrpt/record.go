package tlsrpt

// record.go: the reporting policy a domain publishes in DNS (RFC 8460 §3).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"smtpkit/internal/dns"
)

// Record is a parsed _smtp._tls TXT record: where the domain wants its
// reports (RFC 8460 §3, "rua").
type Record struct {
	// RUA is the rua URIs in their order, mailto: and https: only.
	RUA []*url.URL
}

// Mailto is the addresses of the record's mailto: URIs (RFC 6068: the
// path, percent-decoded, split at commas; header fields are ignored), at
// most MaxRUA of them.
func (r Record) Mailto() []string {
	var to []string
	for _, u := range r.RUA {
		if u.Scheme == "mailto" {
			// RFC 8460 §3: a comma inside a rua URI is %2C, so the
			// addresses are split after decoding.
			path, err := url.PathUnescape(u.Opaque)
			if err != nil {
				continue
			}
			for _, a := range strings.Split(path, ",") {
				if a = strings.TrimSpace(a); a != "" && len(to) < MaxRUA {
					to = append(to, a)
				}
			}
		}
	}
	return to
}

// HTTPS is the record's https: URIs.
func (r Record) HTTPS() []*url.URL {
	var out []*url.URL
	for _, u := range r.RUA {
		if u.Scheme == "https" {
			out = append(out, u)
		}
	}
	return out
}

// ErrNotTLSRPT is returned by ParseRecord for a TXT record that is not a
// TLS-RPT record at all (it does not start with the version field).
var ErrNotTLSRPT = errors.New("tlsrpt: not a v=TLSRPTv1 record")

// MaxRUA bounds the URIs taken from one record, and the mailto:
// addresses (a record is the domain's to write; house rule 4).
const MaxRUA = 8

// ParseRecord parses a TLS-RPT record (RFC 8460 §3):
//
//	tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim   = *WSP ";" *WSP
//	tlsrpt-rua    = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//
// The version field comes first, exactly. Exactly one rua field is
// required; other fields that are well-formed key=value pairs are
// extensions and ignored (§3: "unknown fields SHALL be ignored"). URIs
// other than mailto: and https: are skipped; a record left without a
// URI is an error.
func ParseRecord(txt string) (Record, error) {
	fields := strings.Split(txt, ";")
	if strings.TrimRight(fields[0], " \t") != "v=TLSRPTv1" {
		return Record{}, ErrNotTLSRPT
	}
	var r Record
	seenRUA := false
	for i, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-2 {
				break // the optional trailing delimiter
			}
			return Record{}, errors.New("tlsrpt: empty field in record")
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok || !validExtName(k) {
			return Record{}, fmt.Errorf("tlsrpt: bad field %q in record", f)
		}
		if k != "rua" {
			if !validExtValue(v) {
				return Record{}, fmt.Errorf("tlsrpt: bad value of field %q in record", k)
			}
			continue
		}
		if seenRUA {
			return Record{}, errors.New("tlsrpt: more than one rua field in record")
		}
		seenRUA = true
		for _, s := range strings.Split(v, ",") {
			u, err := parseRUA(strings.Trim(s, " \t"))
			if err != nil {
				return Record{}, err
			}
			if u != nil && len(r.RUA) < MaxRUA {
				r.RUA = append(r.RUA, u)
			}
		}
	}
	if !seenRUA {
		return Record{}, errors.New("tlsrpt: record has no rua field")
	}
	if len(r.RUA) == 0 {
		return Record{}, errors.New("tlsrpt: record has no mailto: or https: rua")
	}
	return r, nil
}

// parseRUA parses one rua URI; nil, nil for a scheme we do not send to.
func parseRUA(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("tlsrpt: bad rua URI %q", s)
	}
	switch u.Scheme = strings.ToLower(u.Scheme); u.Scheme {
	case "mailto":
		if u.Opaque == "" || !strings.Contains(u.Opaque, "@") {
			return nil, fmt.Errorf("tlsrpt: rua %q has no address", s)
		}
	case "https":
		if u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("tlsrpt: rua %q: an https URI needs a host and no user", s)
		}
	default:
		return nil, nil
	}
	return u, nil
}

// validExtName: tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func validExtName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validExtValue: tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E).
func validExtValue(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

// TXTResolver is the lookup Lookup needs (dns.Resolver has it).
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error)
}

// ErrNoRecord is returned by Lookup when the domain publishes no usable
// TLS-RPT record: nobody asked for its reports.
var ErrNoRecord = errors.New("tlsrpt: no TLS-RPT record")

// Lookup finds the reporting policy of domain at _smtp._tls.<domain>
// (RFC 8460 §3): TXT records not starting with the version are ignored,
// and unless exactly one remains the domain is taken not to implement
// TLS-RPT (ErrNoRecord, wrapping the reason). A DNS failure that may go
// away wraps dns.ErrTemporary.
func Lookup(ctx context.Context, res TXTResolver, domain string) (Record, error) {
	ans, err := res.LookupTXT(ctx, "_smtp._tls."+strings.TrimSuffix(domain, "."))
	if err != nil {
		return Record{}, err
	}
	var found []string
	for _, txt := range ans.Records {
		if _, err := ParseRecord(txt); !errors.Is(err, ErrNotTLSRPT) {
			found = append(found, txt)
		}
	}
	switch len(found) {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
	default:
		return Record{}, fmt.Errorf("%w: %d v=TLSRPTv1 records at _smtp._tls.%s", ErrNoRecord, len(found), domain)
	}
	r, err := ParseRecord(found[0])
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrNoRecord, err)
	}
	return r, nil
}
