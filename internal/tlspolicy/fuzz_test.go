package tlspolicy

import "testing"

// FuzzParse: a policy or mode name that parses prints as itself, and
// Decide on any policy value never plans less than that policy asks.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"none", "Verify", "auto", "starttls", "implicit", "", "may", "STARTTLS"} {
		f.Add(s, 25)
	}
	f.Fuzz(func(t *testing.T, s string, port int) {
		if p, err := ParsePolicy(s); err == nil {
			plan := Decide(Input{Policy: p, Host: "mx.example.net", Port: port})
			if p >= Required && !plan.Require || p == Verify && plan.VerifyName == "" {
				t.Fatalf("%q on port %d: %+v", s, port, plan)
			}
		}
		if m, err := ParseMode(s); err == nil && m.String() != s {
			t.Fatalf("ParseMode(%q) = %v", s, m)
		}
	})
}
