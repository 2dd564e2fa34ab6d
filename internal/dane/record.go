package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"smtpkit/internal/dns"
)

// maxData is the longest certificate association data a TLSA record can
// carry: RDATA is at most 65535 octets, three of them the fields before it.
const maxData = 65535 - 3

// ParseRecord parses the presentation form of a TLSA record's data
// (RFC 6698 §2.2): the usage, selector and matching type as decimal
// numbers, then the certificate association data in hexadecimal, in which
// white space is allowed ("3 1 1 a0b1..."). It accepts any values of the
// three fields (Usable says whether a client may use the record) but
// requires association data.
func ParseRecord(s string) (dns.TLSA, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return dns.TLSA{}, fmt.Errorf("dane: TLSA record %q: want usage, selector, matching type and data", clip(s))
	}
	var nums [3]uint8
	for i, name := range []string{"usage", "selector", "matching type"} {
		n, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil { // ParseUint takes no sign: "+3" and "-1" are refused
			return dns.TLSA{}, fmt.Errorf("dane: TLSA record: %s %q is not a number from 0 to 255", name, clip(f[i]))
		}
		nums[i] = uint8(n)
	}
	h := strings.Join(f[3:], "")
	if len(h) > 2*maxData {
		return dns.TLSA{}, errors.New("dane: TLSA record: association data longer than a DNS record holds")
	}
	data, err := hex.DecodeString(h)
	if err != nil {
		return dns.TLSA{}, fmt.Errorf("dane: TLSA record: association data is not hexadecimal: %v", err)
	}
	return dns.TLSA{Usage: nums[0], Selector: nums[1], MatchingType: nums[2], Data: data}, nil
}

// Format is the presentation form of r (RFC 6698 §2.2) with lower-case
// hexadecimal data, as a zone file and a TLS-RPT policy-string carry it
// (RFC 8460 §4.4). ParseRecord(Format(r)) is r for every r with data.
func Format(r dns.TLSA) string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// Record builds the TLSA record of the given usage, selector and matching
// type for cert (RFC 6698 §2.1). A selector or matching type this package
// does not know gives a record without data, which is not Usable.
func Record(usage, selector, matching uint8, cert *x509.Certificate) dns.TLSA {
	r := dns.TLSA{Usage: usage, Selector: selector, MatchingType: matching}
	r.Data = associate(selector, matching, cert)
	return r
}

// associate is the association data of cert for a selector and matching
// type (RFC 6698 §2.1.2, §2.1.3), nil when either is unknown.
func associate(selector, matching uint8, cert *x509.Certificate) []byte {
	var content []byte
	switch selector {
	case SelectorCert:
		content = cert.Raw
	case SelectorSPKI:
		content = cert.RawSubjectPublicKeyInfo
	default:
		return nil
	}
	switch matching {
	case MatchFull:
		return bytes.Clone(content)
	case MatchSHA256:
		d := sha256.Sum256(content)
		return d[:]
	case MatchSHA512:
		d := sha512.Sum512(content)
		return d[:]
	}
	return nil
}

// matches reports whether the usable record r matches cert (RFC 6698
// §2.1.2, §2.1.3; usage is the caller's concern).
func matches(r dns.TLSA, cert *x509.Certificate) bool {
	d := associate(r.Selector, r.MatchingType, cert)
	return d != nil && bytes.Equal(d, r.Data)
}

// clip shortens s for an error message: the input may be large.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
