package mtasts

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Policy // compared when wantErr is ""
		wantErr string // a substring of the error
	}{
		{
			name: "RFC 8461 §3.2 example, CRLF",
			body: "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
			want: Policy{Mode: Enforce, MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, MaxAge: 604800 * time.Second,
				Text: []string{"version: STSv1", "mode: enforce", "mx: mail.example.com", "mx: *.example.net", "mx: backupmx.example.com", "max_age: 604800"}},
		},
		{
			name: "LF, no final line end, any order",
			body: "mx: MX.Example.COM.\nmax_age: 86400\nmode: testing\nversion: STSv1",
			want: Policy{Mode: Testing, MX: []string{"mx.example.com"}, MaxAge: 86400 * time.Second,
				Text: []string{"mx: MX.Example.COM.", "max_age: 86400", "mode: testing", "version: STSv1"}},
		},
		{
			name: "mode none needs no mx",
			body: "version: STSv1\nmode: none\nmax_age: 0\n",
			want: Policy{Mode: None, Text: []string{"version: STSv1", "mode: none", "max_age: 0"}},
		},
		{
			name: "max_age capped at one year",
			body: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n",
			want: Policy{Mode: Enforce, MX: []string{"a.example"}, MaxAge: MaxMaxAge,
				Text: []string{"version: STSv1", "mode: enforce", "mx: a.example", "max_age: 9999999999"}},
		},
		{
			name: "extensions, blank lines, white space, duplicates",
			body: "version:STSv1\n\n  mode:\tenforce  \nmode: none\nx-ext: some value é\nmx: a.example\nmx: a.example\nmax_age: 60\nmax_age: 99\n\n",
			want: Policy{Mode: Enforce, MX: []string{"a.example"}, MaxAge: 60 * time.Second,
				Text: []string{"version: STSv1", "mode: enforce", "mode: none", "x-ext: some value é", "mx: a.example", "mx: a.example", "max_age: 60", "max_age: 99"}},
		},
		{name: "empty", body: "", wantErr: "no version"},
		{name: "no version", body: "mode: enforce\nmx: a.example\nmax_age: 60\n", wantErr: "no version"},
		{name: "wrong version", body: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 60\n", wantErr: "version"},
		{name: "no mode", body: "version: STSv1\nmx: a.example\nmax_age: 60\n", wantErr: "no mode"},
		{name: "unknown mode", body: "version: STSv1\nmode: report\nmx: a.example\nmax_age: 60\n", wantErr: "unknown mode"},
		{name: "mode is case-sensitive", body: "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 60\n", wantErr: "unknown mode"},
		{name: "no max_age", body: "version: STSv1\nmode: enforce\nmx: a.example\n", wantErr: "no max_age"},
		{name: "negative max_age", body: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", wantErr: "max_age"},
		{name: "11 digits", body: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", wantErr: "max_age"},
		{name: "enforce without mx", body: "version: STSv1\nmode: enforce\nmax_age: 60\n", wantErr: "without mx"},
		{name: "testing without mx", body: "version: STSv1\nmode: testing\nmax_age: 60\n", wantErr: "without mx"},
		{name: "bad mx", body: "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 60\n", wantErr: "mx pattern"},
		{name: "mx wildcard in the middle", body: "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 60\n", wantErr: "mx pattern"},
		{name: "non-ASCII mx", body: "version: STSv1\nmode: enforce\nmx: \u212a.example\nmax_age: 60\n", wantErr: "mx pattern"},
		{name: "bare wildcard", body: "version: STSv1\nmode: enforce\nmx: *\nmax_age: 60\n", wantErr: "mx pattern"},
		{name: "no colon", body: "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 60\n", wantErr: "line 2"},
		{name: "empty value", body: "version: STSv1\nmode: enforce\nmx:\nmax_age: 60\n", wantErr: "line 3"},
		{name: "bare CR inside a line", body: "version: STSv1\nmode: enforce\rmx: a.example\nmax_age: 60\n", wantErr: "line 2"},
		{name: "HTML", body: "<html><body>not found</body></html>", wantErr: "line 1"},
		{name: "invalid UTF-8", body: "version: STSv1\nx: \xff\n", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePolicy: %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want.Mode || got.MaxAge != tt.want.MaxAge || !slices.Equal(got.MX, tt.want.MX) || !slices.Equal(got.Text, tt.want.Text) {
				t.Errorf("ParsePolicy:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	p := &Policy{MX: []string{"mail.example.com", "*.example.net", "*.mx.example.org"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mail.example.com", true},
		{"MAIL.Example.COM.", true},
		{"mail.example.com..", false},
		{"other.example.com", false},
		{"example.com", false},
		{"amail.example.com", false},
		{"mx1.example.net", true},
		{"MX1.EXAMPLE.NET.", true},
		{"example.net", false},       // §4.1: the wildcard needs a label
		{".example.net", false},      // an empty label
		{"a.mx1.example.net", false}, // only one label
		{"mx1.example.net.evil", false},
		{"mx1example.net", false},
		{"a.mx.example.org", true},
		{"mx.example.org", false},
		{"", false},
		{".", false},
		{"mail.example.\u212aom", false}, // Kelvin sign: no Unicode case folding
	}
	for _, tt := range tests {
		if got := p.Matches(tt.host); got != tt.want {
			t.Errorf("Matches(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if (&Policy{}).Matches("mail.example.com") {
		t.Error("a policy without mx patterns matched")
	}
}

func TestExpires(t *testing.T) {
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	p := &Policy{Fetched: at, MaxAge: time.Hour}
	if got := p.Expires(); !got.Equal(at.Add(time.Hour)) {
		t.Errorf("Expires = %v", got)
	}
}
