package dns

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestServerAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1:53"},
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"resolver.example", "resolver.example:53"},
		{"", ""},
		{":53", ""},
	}
	for _, tt := range tests {
		got, err := serverAddr(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("serverAddr(%q) = %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# comment\nsearch example.net\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0 trust-ad\n")
	c, err := New(Options{ResolvConf: good})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.53:53", "[::1]:53"}; !reflect.DeepEqual(c.servers, want) {
		t.Errorf("servers %v, want %v", c.servers, want)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout %v, want %v", c.timeout, DefaultTimeout)
	}
	if _, err := New(Options{ResolvConf: write("empty", "search example.net\n")}); err == nil {
		t.Error("resolv.conf without nameservers accepted")
	}
	if _, err := New(Options{ResolvConf: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing resolv.conf accepted")
	}
	// Explicit servers win over the file.
	c, err = New(Options{Servers: []string{"192.0.2.53"}, ResolvConf: filepath.Join(dir, "missing")})
	if err != nil || !reflect.DeepEqual(c.servers, []string{"192.0.2.53:53"}) {
		t.Errorf("explicit servers: %v, %v", c, err)
	}
	if _, err := New(Options{Servers: []string{""}}); err == nil {
		t.Error("empty server address accepted")
	}
}
