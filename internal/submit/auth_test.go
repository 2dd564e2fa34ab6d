package submit

import "testing"

func TestMechanism(t *testing.T) {
	tests := []struct{ asked, offered, want string }{
		{"", "PLAIN LOGIN SCRAM-SHA-256", "SCRAM-SHA-256"},
		{"", "LOGIN PLAIN", "PLAIN"},
		{"", "login", "LOGIN"},
		{"", "CRAM-MD5", ""},
		{"", "", ""},
		{"plain", "", "PLAIN"},
		{"Scram-Sha-256", "PLAIN", "SCRAM-SHA-256"},
		{"xoauth2", "XOAUTH2", ""},
	}
	for _, tt := range tests {
		got, err := Mechanism(tt.asked, tt.offered)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Mechanism(%q, %q) = %q, %v; want %q", tt.asked, tt.offered, got, err, tt.want)
		}
	}
}
