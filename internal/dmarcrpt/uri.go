package dmarcrpt

// uri.go: the rua destinations of a DMARC record (RFC 7489 §6.2, §6.4).

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
)

// MaxRUA bounds the destinations taken from one record (the record is the
// sender's to write; house rule 4).
const MaxRUA = 8

// Destination is one rua=mailto: address and the largest report it takes
// (0: no limit).
type Destination struct {
	Address string `json:"address"`
	MaxSize int64  `json:"max_size,omitempty"`
}

// Domain is the host part of the address, lower case.
func (d Destination) Domain() string {
	_, host, _ := strings.Cut(d.Address, "@")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// ParseURI parses one DMARC URI (§6.2):
//
//	dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
//
// Only mailto: URIs with one address are destinations: ok is false for
// other schemes (§6.2: a receiver need only support mailto:).
func ParseURI(s string) (d Destination, ok bool, err error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '!'); i >= 0 {
		n, err := parseSize(s[i+1:])
		if err != nil {
			return Destination{}, false, fmt.Errorf("dmarcrpt: rua %q: %w", s, err)
		}
		s, d.MaxSize = s[:i], n
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return Destination{}, false, fmt.Errorf("dmarcrpt: bad rua URI %q", s)
	}
	if !strings.EqualFold(u.Scheme, "mailto") {
		return Destination{}, false, nil
	}
	addr, err := url.PathUnescape(u.Opaque)
	if err != nil {
		return Destination{}, false, fmt.Errorf("dmarcrpt: rua %q: %w", s, err)
	}
	local, domain, found := strings.Cut(addr, "@")
	if !found || local == "" || !hostName(domain) || strings.Count(addr, "@") != 1 || strings.ContainsAny(addr, ",<>\" \t\r\n") {
		return Destination{}, false, fmt.Errorf("dmarcrpt: rua %q is not one address", s)
	}
	d.Address = addr
	return d, true, nil
}

// hostName reports whether domain is a host name a report can be mailed
// to: dot-separated labels of 1 to 63 octets, none empty (one trailing
// dot, the root, is allowed), at most 253 octets in all (RFC 1035 §2.3.4).
// "." or "a..b" is no domain: the fuzzer found "mailto:0@." accepted with
// an empty Domain().
func hostName(domain string) bool {
	d := strings.TrimSuffix(domain, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

// parseSize is the "!" size of a URI: digits and an optional unit,
// k/m/g/t in powers of two (§6.2).
func parseSize(s string) (int64, error) {
	shift := 0
	if s != "" {
		switch strings.ToLower(s[len(s)-1:]) {
		case "k":
			shift = 10
		case "m":
			shift = 20
		case "g":
			shift = 30
		case "t":
			shift = 40
		}
		if shift > 0 {
			s = s[:len(s)-1]
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("bad size limit")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)>>shift {
		return 0, errors.New("size limit out of range")
	}
	return n << shift, nil
}

// Destinations is the mailto: rua of a DMARC record, in order, at most
// MaxRUA; bad URIs are returned as errors beside the good ones.
func Destinations(record string) ([]Destination, []error) {
	rec, err := dmarc.Parse(record)
	if err != nil {
		return nil, []error{fmt.Errorf("dmarcrpt: record: %w", err)}
	}
	return uriList(rec.ReportURIAggregate)
}

func uriList(uris []string) ([]Destination, []error) {
	var out []Destination
	var errs []error
	for _, s := range uris {
		if s == "" {
			continue
		}
		d, ok, err := ParseURI(s)
		if err != nil {
			errs = append(errs, err)
		} else if ok && len(out) < MaxRUA {
			out = append(out, d)
		}
	}
	return out, errs
}
