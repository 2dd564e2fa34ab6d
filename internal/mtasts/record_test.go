package mtasts

import "testing"

func TestParseRecord(t *testing.T) {
	tests := []struct {
		txt    string
		wantID string // "" = error
	}{
		{"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
		{"v=STSv1; id=20160831085700Z", "20160831085700Z"},
		{"v=STSv1;id=abc", "abc"},
		{"v=STSv1 ;\tid=abc\t; ", "abc"},
		{"v=STSv1; ext=val; id=abc", "abc"},
		{"v=STSv1; id=first; id=second", "first"},
		{"v=STSv1; id=" + "a1234567890123456789012345678901", "a1234567890123456789012345678901"}, // 32
		{"v=STSv1; id=" + "a12345678901234567890123456789012", ""},                                // 33
		{"v=STSv1;", ""},                       // no id
		{"v=STSv1", ""},                        // no fields
		{"v=STSv1; ext=x", ""},                 // no id
		{"v=STSv1; id=", ""},                   // empty id
		{"v=STSv1; id=ab-c", ""},               // not alphanumeric
		{"v=STSv1; id=ab c", ""},               // space inside
		{"v=STSv2; id=abc", ""},                // version
		{"V=STSv1; id=abc", ""},                // %s: case-sensitive
		{" v=STSv1; id=abc", ""},               // must start the record
		{"id=abc; v=STSv1", ""},                // version first
		{"v=STSv1; ; id=abc", ""},              // empty field
		{"v=STSv1; id=abc;;", ""},              // two trailing delimiters
		{"v=STSv1; id=abc; ext", ""},           // field without "="
		{"v=STSv1; id=abc; ext=a=b", ""},       // "=" in a value
		{"v=STSv1; id=abc; -ext=x", ""},        // name starts with "-"
		{"v=STSv1; id=abc; e_x.t-1=x", "abc"},  // name characters
		{"v=STSv1; id=abc; ext=\x7f", ""},      // control character
		{"v=STSv1; ID=abc", ""},                // "ID" is an extension; no id
		{"v=STSv1; id=abc; x=" + "\u00e9", ""}, // non-ASCII value
		{"v=STSv1\x00; id=abc", ""},            // NUL in the version
		{"", ""},
	}
	for _, tt := range tests {
		id, err := ParseRecord(tt.txt)
		if tt.wantID == "" {
			if err == nil {
				t.Errorf("ParseRecord(%q) = %q, want an error", tt.txt, id)
			}
			continue
		}
		if err != nil || id != tt.wantID {
			t.Errorf("ParseRecord(%q) = %q, %v; want %q", tt.txt, id, err, tt.wantID)
		}
	}
}

func TestIsSTSRecord(t *testing.T) {
	tests := []struct {
		txt  string
		want bool
	}{
		{"v=STSv1; id=1", true},
		{"v=STSv1", true},
		{"v=STSv1 ; id=1", true},
		{"v=STSv10; id=1", false},
		{"v=spf1 -all", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isSTSRecord(tt.txt); got != tt.want {
			t.Errorf("isSTSRecord(%q) = %v, want %v", tt.txt, got, tt.want)
		}
	}
}
