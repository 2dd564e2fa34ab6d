package srs

import "strings"

// Kind tells SRS0 from SRS1.
type Kind int

const (
	SRS0 Kind = iota // first hop: the original sender inside
	SRS1             // second hop: the first forwarder's SRS0 address inside
)

// Address is a parsed SRS local part.
//
// For SRS0, Domain and Local are the original sender's, Stamp the
// timestamp. For SRS1, Domain is the first forwarder's and Local that
// forwarder's SRS0 local part ("SRS0=HHHH=TT=example.org=alice"), the
// address a bounce goes back to; Stamp is empty.
type Address struct {
	Kind   Kind
	Hash   string
	Stamp  string
	Domain string
	Local  string
}

// HasPrefix reports whether local looks like an SRS local part: "SRS0" or
// "SRS1", any case, followed by a separator ('=', or '+' and '-' that
// libsrs2 also accepts).
func HasPrefix(local string) bool {
	if len(local) < 5 || !isSeparator(local[4]) {
		return false
	}
	p := strings.ToUpper(local[:4])
	return p == "SRS0" || p == "SRS1"
}

func isSeparator(c byte) bool { return c == '=' || c == '+' || c == '-' }

// Parse splits an SRS local part into its fields, without checking the
// hash or the age (Rewriter.Reverse does). Anything else is ErrMalformed:
//
//	SRS0=HASH=TT=domain=local     (local may contain '=')
//	SRS1=HASH=domain=<sep>rest    (Local becomes "SRS0<sep>rest")
func Parse(local string) (Address, error) { return parse(local, validHash) }

// parse is Parse with a check of the hash field: ours (validHash), or any
// other forwarder's (foreignHash) when Forward looks inside an address.
func parse(local string, hashOK func(string) bool) (Address, error) {
	if !HasPrefix(local) {
		return Address{}, ErrMalformed
	}
	kind := SRS0
	if local[3] == '1' {
		kind = SRS1
	}
	rest := local[5:]
	if kind == SRS0 {
		f := strings.SplitN(rest, "=", 4)
		if len(f) != 4 || !hashOK(f[0]) || !validDomain(f[2]) || f[3] == "" {
			return Address{}, ErrMalformed
		}
		if _, ok := decodeStamp(f[1]); !ok {
			return Address{}, ErrMalformed
		}
		return Address{Kind: SRS0, Hash: f[0], Stamp: f[1], Domain: f[2], Local: f[3]}, nil
	}
	f := strings.SplitN(rest, "=", 3)
	if len(f) != 3 || !hashOK(f[0]) || !validDomain(f[1]) || len(f[2]) < 2 || !isSeparator(f[2][0]) {
		return Address{}, ErrMalformed
	}
	return Address{Kind: SRS1, Hash: f[0], Domain: f[1], Local: "SRS0" + f[2]}, nil
}

// LocalPart formats a as an SRS local part, the inverse of Parse.
func (a Address) LocalPart() string {
	if a.Kind == SRS0 {
		return "SRS0=" + a.Hash + "=" + a.Stamp + "=" + a.Domain + "=" + a.Local
	}
	// a.Local is "SRS0" plus the separator and the rest.
	return "SRS1=" + a.Hash + "=" + a.Domain + "=" + a.Local[4:]
}

// validHash: the hash field has our length and base32 characters (any
// case); a different length cannot have been made by us.
func validHash(h string) bool {
	if len(h) != hashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if base32Value(h[i]) < 0 {
			return false
		}
	}
	return true
}

// foreignHash: another forwarder's hash, of whatever length it chose.
func foreignHash(h string) bool { return h != "" }

// validDomain: a non-empty domain without the characters that would make
// the decoded address something else (another '@', a separator, space).
// Full syntax is checked on the decoded address (Reverse).
func validDomain(d string) bool {
	return d != "" && !strings.ContainsAny(d, "=@ \t\"\\")
}
