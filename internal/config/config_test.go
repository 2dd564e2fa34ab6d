package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	d := Default()
	if d.DataDir != "/var/lib/smtpkit" || d.Hostname == "" {
		t.Errorf("Default: data_dir %q, hostname %q", d.DataDir, d.Hostname)
	}
	wantListeners := []Listener{
		{Address: ":25", Role: RoleMX, TLS: TLSOpportunistic},
		{Address: ":587", Role: RoleSubmission, TLS: TLSRequired},
		{Address: ":465", Role: RoleSubmissions, TLS: TLSImplicit},
		{Address: ":2525", Role: RoleSubmission, TLS: TLSRequired},
	}
	checkListeners(t, "Default", d.Listeners, wantListeners)
	l := d.Limits
	if l.MessageSize != 50*MiB || l.Recipients != 100 || l.Errors != 10 || l.Connections != 1000 ||
		l.ConnectionsPerIP != 20 || l.CommandTimeout.D() != 5*time.Minute || l.DataTimeout.D() != 10*time.Minute ||
		l.SessionTimeout.D() != 30*time.Minute || l.ShutdownGrace.D() != 30*time.Second ||
		l.MinDataRate != 500 || l.StressThreshold != 80 || l.StressCommandTimeout.D() != 10*time.Second ||
		l.StressDataTimeout.D() != 10*time.Second {
		t.Errorf("Default limits = %+v", l)
	}
	o := d.Outbound
	if o.TLS != OutTLSOpportunistic || o.MaxAge.D() != 120*time.Hour || o.RetryMin.D() != 5*time.Minute ||
		o.RetryMax.D() != 4*time.Hour || o.DelayWarning != 0 || o.Concurrency != 20 || o.Resolver != "" ||
		o.MaxDeliveries != 100 || o.ActiveLimit != 20000 {
		t.Errorf("Default outbound = %+v", o)
	}
	// Production defaults lack a domain and a certificate: exactly those problems.
	err := d.Validate()
	if got := len(Problems(err)); got != 5 { // domain + 4 listeners without a certificate
		t.Errorf("Default().Validate() = %d problems, want 5:\n%v", got, err)
	}

	dev := DevDefault()
	if err := dev.Validate(); err != nil {
		t.Errorf("DevDefault().Validate() = %v", err)
	}
	if dev.Hostname != "localhost" || dev.DataDir != "smtpkit-data" || !dev.TLS.SelfSigned ||
		len(dev.Domains) != 1 || dev.Domains[0].Name != "localhost" {
		t.Errorf("DevDefault = %+v", dev)
	}
	checkListeners(t, "DevDefault", dev.Listeners, []Listener{
		{Address: "127.0.0.1:10025", Role: RoleMX, TLS: TLSOpportunistic},
		{Address: "127.0.0.1:10587", Role: RoleSubmission, TLS: TLSRequired},
		{Address: "127.0.0.1:10465", Role: RoleSubmissions, TLS: TLSImplicit},
		{Address: "127.0.0.1:12525", Role: RoleSubmission, TLS: TLSRequired},
	})
	// Independent values: changing one Default does not change the next.
	d.Listeners[0].Address = ":1"
	if Default().Listeners[0].Address != ":25" {
		t.Error("Default shares its listener slice between calls")
	}
}

func checkListeners(t *testing.T, name string, got, want []Listener) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d listeners, want %d", name, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Address != w.Address || g.Role != w.Role || g.TLS != w.TLS || g.Auth != nil || g.SessionTickets {
			t.Errorf("%s listener %d = %+v, want %+v", name, i, g, w)
		}
	}
}

func TestAuthEnabled(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		role string
		auth *bool
		want bool
	}{
		{RoleMX, nil, false}, {RoleSubmission, nil, true}, {RoleSubmissions, nil, true},
		{RoleMX, &yes, true}, {RoleSubmission, &no, false},
	}
	// tls = "none": never, whatever the role or the setting.
	for _, l := range []Listener{{Role: RoleSubmission, TLS: TLSNone}, {Role: RoleMX, TLS: TLSNone, Auth: &yes}} {
		if l.AuthEnabled() {
			t.Errorf("%+v: AuthEnabled with tls none", l)
		}
	}
	for _, tt := range tests {
		if got := (Listener{Role: tt.role, Auth: tt.auth}).AuthEnabled(); got != tt.want {
			t.Errorf("role %s auth %v: AuthEnabled = %v", tt.role, tt.auth, got)
		}
	}
}

const minimal = `
hostname = "mail.example.com"
[[domain]]
name = "example.com"
[tls]
self_signed = true
`

func TestParseMerge(t *testing.T) {
	src := minimal + `
[[listener]]
address = "127.0.0.1:2500"
role = "submission"
auth = false

[[listener]]
address = "[::1]:4650"
role = "submissions"
session_tickets = true

[limits]
message_size = "10MB"
command_timeout = "10m"

[outbound]
resolver = "192.0.2.53"
`
	c, err := Parse([]byte(src), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Listeners replace the defaults; an omitted tls comes from the role.
	if len(c.Listeners) != 2 {
		t.Fatalf("listeners = %+v, want the 2 from the file", c.Listeners)
	}
	if l := c.Listeners[0]; l.TLS != TLSRequired || l.AuthEnabled() {
		t.Errorf("listener 0 = %+v", l)
	}
	if l := c.Listeners[1]; l.TLS != TLSImplicit || !l.AuthEnabled() || !l.SessionTickets {
		t.Errorf("listener 1 = %+v", l)
	}
	// Keys in the file override, the rest keep defaults.
	if c.Limits.MessageSize != 10*MB || c.Limits.CommandTimeout.D() != 10*time.Minute {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.Limits.DataTimeout.D() != 10*time.Minute || c.Limits.Recipients != 100 || c.DataDir != "/var/lib/smtpkit" {
		t.Errorf("defaults lost: %+v", c)
	}
	if c.Outbound.Resolver != "192.0.2.53:53" {
		t.Errorf("resolver = %q, want the default port added", c.Outbound.Resolver)
	}

	// Without [[listener]] the four default listeners stay.
	c, err = Parse([]byte(minimal), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 4 || c.Listeners[2].Address != ":465" {
		t.Errorf("listeners = %+v, want the defaults", c.Listeners)
	}
	// Domains replace, not append, too (the dev default's localhost is not there).
	if len(c.Domains) != 1 || c.Domains[0].Name != "example.com" {
		t.Errorf("domains = %+v", c.Domains)
	}
}

// problemLines parses src and returns "line:key" for each problem.
func problemLines(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse([]byte(src), "t.toml")
	var out []string
	for _, e := range Problems(err) {
		var p *Problem
		if !errors.As(e, &p) {
			t.Fatalf("problem %v is a %T, not a *Problem", e, e)
		}
		if p.File != "t.toml" {
			t.Errorf("problem %v: file %q", p, p.File)
		}
		out = append(out, strings.Join([]string{itoa(p.Line), p.Key}, ":"))
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:key"
	}{
		{"unknown top-level key", "colour = 1\n" + minimal, []string{itoa(1) + ":colour"}},
		{"unknown key in table", minimal + "[limits]\nrecipient = 100\n", []string{itoa(8) + ":limits.recipient"}},
		{"unknown key in two listeners", minimal + `
[[listener]]
address = ":25"
role = "mx"
tsl = "none"
[[listener]]
address = ":587"
role = "submission"
tsl = "required"
`, []string{itoa(11) + ":listener.tsl", itoa(15) + ":listener.tsl"}},
		{"syntax error", minimal + "[limits]\nrecipients = = 1\n", []string{itoa(8) + ":limits.recipients"}},
		{"bad size", minimal + "[limits]\nmessage_size = \"10 parsecs\"\n", []string{itoa(8) + ":limits.message_size"}},
		{"bad duration", minimal + "[limits]\ndata_timeout = 600\n", []string{itoa(8) + ":limits.data_timeout"}},
		{"wrong type", minimal + "[limits]\nrecipients = \"many\"\n", []string{itoa(8) + ":limits.recipients"}},
		{"many validation problems", `hostname = "bad host"
[[listener]]
address = "localhost"
role = "relay"
[[listener]]
address = ":587"
role = "submission"
tls = "implicit"
[[listener]]
address = ":587"
role = "submissions"
[[tls.certificate]]
cert = "/c.pem"
[limits]
recipients = 99
message_size = 0
[outbound]
tls = "maybe"
[[route]]
domain = "example.net"
`, []string{
			itoa(1) + ":hostname",
			itoa(0) + ":domain",
			itoa(3) + ":listener[0].address",
			itoa(4) + ":listener[0].role",
			itoa(8) + ":listener[1].tls",
			itoa(10) + ":listener[2].address",
			itoa(12) + ":tls.certificate[0].key", // the entry's header line: key is missing
			itoa(16) + ":limits.message_size",
			itoa(15) + ":limits.recipients",
			itoa(18) + ":outbound.tls",
			itoa(19) + ":route[0].host",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemLines(t, tt.src)
			if !sameSet(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// minimalConfig is the smallest config that passes validation, for the
// tables that add one section to it.
const minimalConfig = "hostname = \"mx.example.com\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n"

// problemKeys is the Key of every Problem in err; an error that is not a
// Problem fails the test.
func problemKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	for _, e := range Problems(err) {
		p, ok := e.(*Problem)
		if !ok {
			t.Fatalf("not a problem: %v", e)
		}
		keys = append(keys, p.Key)
	}
	return keys
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestProblemError(t *testing.T) {
	_, err := Parse([]byte("colour = 1\n"+minimal), "smtpkit.toml")
	if err == nil || err.Error() != "smtpkit.toml:1: colour: unknown key" {
		t.Errorf("error = %q", err)
	}
}

func TestValidate(t *testing.T) {
	base := DevDefault
	yes := true
	tests := []struct {
		name   string
		modify func(c *Config)
		keys   []string
	}{
		{"dev default", func(c *Config) {}, nil},
		{"no listener", func(c *Config) { c.Listeners = nil }, []string{"listener"}},
		{"submissions without implicit", func(c *Config) { c.Listeners[2].TLS = TLSRequired }, []string{"listener[2].tls"}},
		{"implicit on mx", func(c *Config) { c.Listeners[0].TLS = TLSImplicit }, []string{"listener[0].tls"}},
		{"duplicate address", func(c *Config) { c.Listeners[1].Address = "127.0.0.1:10025" }, []string{"listener[1].address"}},
		{"port 0 may repeat", func(c *Config) { c.Listeners[0].Address = "127.0.0.1:0"; c.Listeners[1].Address = "127.0.0.1:0" }, nil},
		{"bad port", func(c *Config) { c.Listeners[0].Address = "127.0.0.1:70000" }, []string{"listener[0].address"}},
		{"tls without certificate", func(c *Config) { c.TLS.SelfSigned = false; c.Listeners = c.Listeners[:1] }, []string{"listener[0].tls"}},
		{"no tls needs no certificate", func(c *Config) {
			c.TLS.SelfSigned = false
			c.Listeners = []Listener{{Address: "127.0.0.1:25", Role: RoleMX, TLS: TLSNone}}
		}, nil},
		// AUTH only inside TLS, with no loopback exception (issue #19): an
		// explicit auth = true on tls = "none" is a problem on any
		// address, the role default just turns AUTH off.
		{"auth = true without tls", func(c *Config) {
			c.Listeners[1].TLS, c.Listeners[1].Address = TLSNone, "192.0.2.1:587"
			c.Listeners[0].TLS, c.Listeners[0].Auth = TLSNone, &yes
		}, []string{"listener[0].auth"}},
		{"duplicate domain", func(c *Config) { c.Domains = append(c.Domains, Domain{Name: "LOCALHOST"}) }, []string{"domain[1].name"}},
		{"lmtp", func(c *Config) {
			c.Domains[0].LMTP = "unix:/run/dovecot/lmtp"
			c.Domains[0].LMTPAccounts = map[string]string{"alice": "127.0.0.1:24", "bob": LMTPMaildir, "carol": "[::1]:24"}
		}, nil},
		{"bad lmtp", func(c *Config) {
			c.Domains[0].LMTP = "unix:run/lmtp"
			c.Domains[0].LMTPAccounts = map[string]string{"alice": "127.0.0.1", "bob": "127.0.0.1:0", "a@b": "127.0.0.1:24", "dave": "bad host:24"}
		}, []string{"domain[0].lmtp", "domain[0].lmtp_accounts.a@b", "domain[0].lmtp_accounts.alice",
			"domain[0].lmtp_accounts.bob", "domain[0].lmtp_accounts.dave"}},
		{"limits", func(c *Config) {
			c.Limits = Limits{Recipients: 100, Connections: 1, ConnectionsPerIP: 2, ShutdownGrace: -1}
		}, []string{"limits.message_size", "limits.errors", "limits.connections_per_ip",
			"limits.command_timeout", "limits.data_timeout", "limits.session_timeout", "limits.shutdown_grace",
			"limits.min_data_rate", "limits.stress_threshold", "limits.stress_command_timeout", "limits.stress_data_timeout"}},
		{"stress limits", func(c *Config) {
			c.Limits.MinDataRate, c.Limits.StressThreshold = -1, 101
			c.Limits.StressCommandTimeout, c.Limits.StressDataTimeout = 0, Duration(-time.Second)
		}, []string{"limits.min_data_rate", "limits.stress_threshold", "limits.stress_command_timeout", "limits.stress_data_timeout"}},
		{"stress threshold 100", func(c *Config) { c.Limits.StressThreshold = 100 }, nil},
		{"outbound", func(c *Config) {
			c.Outbound = Outbound{TLS: "yes", MaxAge: Duration(time.Hour), RetryMin: Duration(time.Hour),
				RetryMax: Duration(time.Minute), DelayWarning: Duration(2 * time.Hour), Resolver: "nonsense"}
		}, []string{"outbound.tls", "outbound.retry_max", "outbound.delay_warning", "outbound.concurrency",
			"outbound.max_deliveries", "outbound.active_limit", "outbound.journal_max", "outbound.journal_memory", "outbound.resolver"}},
		{"journal_max past a journal record", func(c *Config) { c.Outbound.JournalMax = 2 << 20 }, []string{"outbound.journal_max"}},
		{"journal_max 1MiB", func(c *Config) { c.Outbound.JournalMax = 1 << 20 }, nil},
		{"per-destination above the total", func(c *Config) {
			c.Outbound.Concurrency, c.Outbound.MaxDeliveries = 30, 20
		}, []string{"outbound.concurrency"}},
		{"routes", func(c *Config) {
			c.Routes = []Route{
				{Domain: "*", Host: "relay.example.net:587", AuthUser: "u", AuthPasswordFile: "/p", TLS: "verify"},
				{Domain: "example.org", Host: "mx.example.org"},
				{Domain: "EXAMPLE.org", Host: "a b", TLS: "sometimes", AuthUser: "u"},
				{Domain: "example.net", Host: "relay", AuthUser: "u", AuthPasswordFile: "/p", TLS: "opportunistic"},
			}
		}, []string{"route[2].domain", "route[2].host", "route[2].tls", "route[2]", "route[3].tls"}},
		// Policy names are case-insensitive, as tlspolicy.ParsePolicy
		// reads them when cli builds the routes.
		{"route tls case", func(c *Config) {
			c.Outbound.TLS = "Verify"
			c.Routes = []Route{
				{Domain: "*", Host: "relay.example.net:587", AuthUser: "u", AuthPasswordFile: "/p", TLS: "REQUIRED"},
				{Domain: "example.net", Host: "relay", AuthUser: "u", AuthPasswordFile: "/p", TLS: "Opportunistic"},
			}
		}, []string{"route[1].tls"}},
		{"metrics", func(c *Config) { c.Metrics.Address = "127.0.0.1:10025" }, []string{"metrics.address"}},
		{"log", func(c *Config) { c.Log = Log{Format: "xml", Level: "loud"} }, []string{"log.format", "log.level"}},
		{"maildir sync", func(c *Config) { c.Maildir.Sync = "fsync" }, []string{"maildir.sync"}},
		{"maildir checkpoint", func(c *Config) { c.Maildir.Checkpoint = 0 }, []string{"maildir.checkpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.modify(&c)
			var got []string
			for _, e := range Problems(c.Validate()) {
				got = append(got, e.(*Problem).Key)
			}
			if !sameSet(got, tt.keys) {
				t.Errorf("problem keys = %q, want %q\n%v", got, tt.keys, c.Validate())
			}
		})
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent.toml")
	cfg, src, err := resolve("", missing)
	if err != nil || src != DevDefaultSource || cfg.Listeners[0].Address != "127.0.0.1:10025" {
		t.Errorf("resolve without files = %q, %v", src, err)
	}

	system := filepath.Join(dir, "smtpkit.toml")
	if err := os.WriteFile(system, []byte("data_dir = \"/srv/mail\"\n"+minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, src, err = resolve("", system)
	if err != nil || src != system || cfg.DataDir != "/srv/mail" {
		t.Errorf("resolve with system file = %q, %q, %v", src, cfg.DataDir, err)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("nonsense = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, src, err = resolve(bad, system); err == nil || src != bad || !strings.Contains(err.Error(), "bad.toml:1: nonsense") {
		t.Errorf("resolve(bad) = %q, %v", src, err)
	}
	if _, _, err = resolve(missing, system); err == nil {
		t.Error("resolve of an explicit missing file succeeded")
	}
	// The system file exists but cannot be parsed: an error, not a silent fallback.
	if _, _, err = resolve("", bad); err == nil {
		t.Error("resolve fell back to the dev default over a broken system file")
	}
}

func TestExample(t *testing.T) {
	c, err := Load("../../examples/smtpkit.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.example.com" || len(c.Domains) != 1 || c.Domains[0].Name != "example.com" {
		t.Errorf("example: %+v", c)
	}
	checkListeners(t, "example", c.Listeners, Default().Listeners)
	if len(c.TLS.Certificates) != 1 || !strings.HasPrefix(c.TLS.Certificates[0].Cert, "/etc/letsencrypt/live/") {
		t.Errorf("example certificates = %+v", c.TLS.Certificates)
	}
}
