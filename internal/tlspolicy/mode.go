package tlspolicy

import "fmt"

// Mode is how a connection starts TLS: the transport half of the TLS
// vocabulary, shared by tlspolicy (Plan.Mode), the probe (its mode field and
// --starttls/--implicit-tls/--no-tls) and the load generator (bench --tls).
// The other half is Policy: how much TLS a connection insists on.
// docs/tls-policy.md has the table of both.
type Mode int

// The modes. The zero value, ModeAuto, leaves the choice to the port and
// the policy (implicit TLS on 465, STARTTLS or plaintext elsewhere); it
// is an input only, never what a plan does.
const (
	ModeAuto     Mode = iota // "auto": as the port and policy decide
	ModeNone                 // "none": plaintext
	ModeStartTLS             // "starttls": STARTTLS after EHLO (RFC 3207)
	ModeImplicit             // "implicit": TLS from the first byte (RFC 8314 §3.3)
)

var modeNames = [...]string{
	ModeAuto:     "auto",
	ModeNone:     "none",
	ModeStartTLS: "starttls",
	ModeImplicit: "implicit",
}

// ParseMode parses a mode name: "auto", "none", "starttls" or "implicit"
// (case-sensitive, as written on command lines and in JSON).
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return ModeAuto, fmt.Errorf("tlspolicy: unknown TLS mode %q (want auto, none, starttls or implicit)", s)
}

// String is the mode's name.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Mode is what the plan does: ModeImplicit, ModeStartTLS or ModeNone.
func (p Plan) Mode() Mode {
	switch {
	case p.Implicit:
		return ModeImplicit
	case p.StartTLS:
		return ModeStartTLS
	}
	return ModeNone
}
