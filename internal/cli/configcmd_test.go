package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"smtpkit/internal/config"
)

func runConfigCmd(args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	code = Main(append([]string{"config"}, args...), Stdio{In: strings.NewReader(""), Out: &o, Err: &e})
	return code, o.String(), e.String()
}

func TestConfigCheckExample(t *testing.T) {
	path := "../../examples/smtpkit.toml"
	code, out, errOut := runConfigCmd("check", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		path + ": ok\n",
		"hostname      mail.example.com",
		"domains       example.com",
		"/etc/letsencrypt/live/mail.example.com/fullchain.pem",
		"ADDRESS  ROLE         TLS            AUTH",
		":25      mx           opportunistic  no",
		":587     submission   required       after TLS",
		":465     submissions  implicit       after TLS",
		":2525    submission   required       after TLS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// -certs loads the files, which do not exist here.
	if code, _, errOut := runConfigCmd("check", "-certs", path); code != 1 || !strings.Contains(errOut, "fullchain.pem") {
		t.Errorf("check -certs: exit %d\n%s", code, errOut)
	}
}

func TestConfigCheckProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	src := `hostname = "mail.example.com"
[[domain]]
name = "example.com"
[[listener]]
address = ":465"
role = "submissions"
tls = "required"
[limits]
recipients = 10
colour = "blue"
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConfigCmd("check", path)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		path + ": 3 problems\n",
		path + ":10: limits.colour: unknown key",
		path + ":7: listener[0].tls: ",
		path + ":9: limits.recipients: ",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestConfigPrint(t *testing.T) {
	code, out, errOut := runConfigCmd("dev")
	if code != 0 {
		t.Fatalf("dev: exit %d %s", code, errOut)
	}
	got, err := config.Parse([]byte(out), "dev.toml")
	if err != nil {
		t.Fatalf("printed dev default does not parse: %v\n%s", err, out)
	}
	if want := config.DevDefault(); !reflect.DeepEqual(got, want) {
		t.Errorf("dev default round trip:\n got %+v\nwant %+v", got, want)
	}

	code, out, errOut = runConfigCmd("default")
	if code != 0 {
		t.Fatalf("default: exit %d %s", code, errOut)
	}
	// The production default passes `config check` as printed (issue
	// #19): a placeholder domain, hostname and certificate, each marked.
	path := filepath.Join(t.TempDir(), "default.toml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runConfigCmd("check", path); code != 0 {
		t.Fatalf("config check of the printed default: exit %d\n%s\n%s", code, errOut, out)
	}
	got, err = config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Hostname = "mail.example.com"
	want.Domains = []config.Domain{{Name: "example.com"}}
	want.TLS.Certificates = []config.Certificate{{Cert: "/etc/smtpkit/tls/fullchain.pem", Key: "/etc/smtpkit/tls/privkey.pem"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default round trip:\n got %+v\nwant %+v", got, want)
	}
	for _, before := range []string{"hostname = ", "[[domain]]", "[[tls.certificate]]"} {
		i := strings.Index(out, "\n"+before)
		if i < 0 || !strings.HasPrefix(out[strings.LastIndex(out[:i], "\n")+1:], "# EDIT: ") {
			t.Errorf("no \"# EDIT:\" line above %q:\n%s", before, out)
		}
	}
}

func TestConfigUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"check"}, {"check", "a", "b"}, {"frobnicate"}, {"dev", "extra"}} {
		if code, _, errOut := runConfigCmd(args...); code != 2 || !strings.Contains(errOut, "usage:") {
			t.Errorf("config %q: exit %d\n%s", args, code, errOut)
		}
	}
	if code, _, errOut := runConfigCmd("check", filepath.Join(t.TempDir(), "missing.toml")); code != 1 || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
}

// TestConfigCheckScreening: the summary names the DNS lists with their
// weights and the threshold, and each mx listener's greeting delay.
func TestConfigCheckScreening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "screen.toml")
	src := `hostname = "mail.example.com"
pregreet = "3s"
dnsbl_threshold = 2
[tls]
self_signed = true
[[domain]]
name = "example.com"
[[listener]]
address = ":25"
role = "mx"
[[listener]]
address = ":2526"
role = "mx"
pregreet = "0s"
[[dnsbl]]
zone = "bl.example"
weight = 2
[[dnsbl]]
zone = "wl.example"
weight = -3
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConfigCmd("check", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"dnsbl         bl.example (+2), wl.example (-3); threshold 2\n", "pregreet      3s on :25\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "on :2526") {
		t.Errorf("a listener with pregreet = \"0s\" is listed:\n%s", out)
	}
}

// TestConfigCheckACME: the summary names the [acme] certificate instead
// of "none"; with -certs, an unreadable acme.ca is an error.
func TestConfigCheckACME(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acme.toml")
	src := "hostname = \"mail.example.com\"\ndata_dir = \"/var/lib/smtpkit\"\n[[domain]]\nname = \"example.com\"\n" +
		"[acme]\ndirectory = \"https://acme.example/dir\"\nca = \"" + filepath.Join(dir, "missing.pem") + "\"\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConfigCmd("check", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	want := "acme          mail.example.com by tls-alpn-01 on :443 from https://acme.example/dir, kept in /var/lib/smtpkit/acme\n"
	if !strings.Contains(out, want) || strings.Contains(out, "certificates  none") {
		t.Errorf("output lacks %q (or says none):\n%s", want, out)
	}
	if code, _, errOut := runConfigCmd("check", "-certs", path); code != 1 || !strings.Contains(errOut, "acme.ca") {
		t.Errorf("-certs with a missing acme.ca: exit %d %s", code, errOut)
	}
}
