package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
)

func TestParseBenchFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(benchFlags) bool
	}{
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example"}, "", func(f benchFlags) bool { return f.messages == 1000 && f.concurrency == 1 }},
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example", "--duration", "2s"}, "", func(f benchFlags) bool { return f.messages == 0 }},
		{[]string{"--server", "127.0.0.1:25", "--idle", "10"}, "", func(f benchFlags) bool { return f.idle == 10 }},
		{[]string{"--to", "a@b.example"}, "--server is required", nil},
		{[]string{"--server", "127.0.0.1:25"}, "--to is required", nil},
		{[]string{"--server", "127.0.0.1", "--to", "a@b.example"}, "--server", nil},
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example", "--messages", "5", "--duration", "1s"}, "exclude", nil},
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example", "--auth-user", "u"}, "--password-file", nil},
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example", "--concurrency", "0"}, "at least 1", nil},
		{[]string{"--server", "127.0.0.1:25", "--to", "a@b.example", "extra"}, "unexpected argument", nil},
	}
	for _, tt := range tests {
		f, err := parseBenchFlags(tt.args, io.Discard)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
		case tt.check != nil && !tt.check(f):
			t.Errorf("%v: flags %+v", tt.args, f)
		}
	}
	f, _ := parseBenchFlags([]string{"--server", "127.0.0.1:25", "--to", "a@b.example, c@d.example", "--tls", "tls"}, io.Discard)
	if _, err := f.options(); err == nil {
		t.Error("--tls tls accepted")
	}
	// --tls takes tlspolicy's mode words; auto needs a policy a load run
	// does not have.
	for mode, ok := range map[string]bool{"none": true, "starttls": true, "implicit": true, "auto": false, "STARTTLS": false} {
		f.tlsMode = mode
		if o, err := f.options(); (err == nil) != ok || ok && o.TLS.String() != mode {
			t.Errorf("--tls %s: %v, %v", mode, o.TLS, err)
		}
	}
	f.tlsMode = "starttls"
	o, err := f.options()
	if err != nil || len(o.To) != 2 || o.TLSConfig == nil || o.TLSConfig.ServerName != "127.0.0.1" {
		t.Errorf("options = %+v, %v", o, err)
	}
}

// A server that refuses connections: every message fails as "network",
// the exit status is 1 and --json gives the report.
func TestRunBenchRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	code := Main([]string{"bench", "--server", addr, "--to", "a@b.example", "--messages", "3", "--json"}, Stdio{Out: &out, Err: &errb})
	if code != 1 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var rep struct {
		Sent, Failed int
		Errors       map[string]int
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Sent != 0 || rep.Failed != 3 || rep.Errors["network"] != 3 {
		t.Errorf("report %+v", rep)
	}
	if code := Main([]string{"bench"}, Stdio{Out: &out, Err: &errb}); code != 2 {
		t.Errorf("no flags: exit %d, want 2", code)
	}
}
