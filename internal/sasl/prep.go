package sasl

import (
	"golang.org/x/text/secure/precis"
)

// PreparePassword applies the OpaqueString profile of RFC 8265 §4.2 (the
// successor of SASLprep, RFC 4013, that RFC 5802 §2.2 names) to a
// password: non-ASCII spaces become U+0020, the string is put in NFC, and
// control characters are refused. ASCII passwords without control
// characters come back unchanged, so hashes made from them before stay
// valid. ok is false when the profile refuses the password; callers then
// use the password as given (a password with a tab or other control
// character still works the way it always did, byte for byte).
func PreparePassword(password string) (prepared string, ok bool) {
	p, err := precis.OpaqueString.String(password)
	if err != nil || p == "" {
		return password, false
	}
	return p, true
}

// PrepareUsername applies the UsernameCasePreserved profile of RFC 8265
// §3.4 to an authentication identity: full-width characters are mapped to
// their normal forms and the string is put in NFC; case is kept (the
// account store does its own folding, such as lowercasing the domain) and
// spaces and control characters are refused. Every ASCII name without
// them comes back unchanged. ok is false when the profile refuses the
// name; the mechanism then answers as for an unknown user.
func PrepareUsername(name string) (prepared string, ok bool) {
	p, err := precis.UsernameCasePreserved.String(name)
	if err != nil || p == "" {
		return name, false
	}
	return p, true
}

// prepPassword is PreparePassword without the ok flag.
func prepPassword(password string) string {
	p, _ := PreparePassword(password)
	return p
}
