package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"smtpkit/internal/testcert"
	"smtpkit/internal/tlspolicy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenPort replaces each fake server's port in the golden files.
const goldenPort = 2525

// goldenReport probes three fake servers (STARTTLS with AUTH in plaintext,
// implicit TLS verified against --ca, plaintext only) and a closed port,
// then masks what changes between runs: timings, ports and the
// certificate fingerprint. Certificate dates, serial and the clock are
// fixed by the fake; TLS 1.2 with one cipher suite keeps the cipher
// independent of the CPU's AES support.
func goldenReport(t *testing.T) Report {
	cert := fakeCert(t)
	suite := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	st := starttlsServer()
	st.MaxVersion, st.CipherSuites = tls.VersionTLS12, suite
	implicit := &fakeServer{Greeting: "220 fake.probe.test ESMTP\r\n", Implicit: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: suite, EHLO: []string{"8BITMIME", "AUTH PLAIN"}}
	plain := &fakeServer{Greeting: "220-fake.probe.test ESMTP\r\n220 no TLS here\r\n", EHLO: []string{"SIZE 10240000"}}

	opts := testOptions()
	var results []Result
	results = append(results, Port(context.Background(), "127.0.0.1", st.start(t, cert), opts))
	verified := opts
	verified.Mode, verified.Roots, verified.ServerName = tlspolicy.ModeImplicit, testcert.Pool(cert), fakeCertName
	results = append(results, Port(context.Background(), "127.0.0.1", implicit.start(t, cert), verified))
	results = append(results, Port(context.Background(), "127.0.0.1", plain.start(t, cert), opts))
	results = append(results, Port(context.Background(), "127.0.0.1", closedPort(t), opts))
	for i := range results {
		mask(&results[i])
	}
	return Report{Results: results}
}

// maskReport masks every result and the ports of the domains' hops.
func maskReport(rep *Report) {
	for i := range rep.Results {
		mask(&rep.Results[i])
	}
	for _, d := range rep.Domains {
		for i := range d.Hops {
			d.Hops[i].Port = goldenPort
		}
	}
}

// mask replaces the volatile parts of a result with fixed values.
func mask(r *Result) {
	from := ":" + strconv.Itoa(r.Port)
	to := ":" + strconv.Itoa(goldenPort)
	r.Port = goldenPort
	r.Address = strings.ReplaceAll(r.Address, from, to)
	r.ConnectMS = 0
	r.Error = strings.ReplaceAll(r.Error, from, to)
	for i, l := range r.Transcript {
		r.Transcript[i] = strings.ReplaceAll(l, from, to)
	}
	if r.TLS != nil {
		r.TLS.HandshakeMS = 0
		if r.TLS.Certificate != nil {
			r.TLS.Certificate.SHA256 = "MASKED"
		}
	}
	if r.NoSNI != nil && r.NoSNI.SHA256 != "" {
		r.NoSNI.SHA256 = "MASKED"
	}
}

func TestGolden(t *testing.T) {
	rep := goldenReport(t)
	var text bytes.Buffer
	if err := rep.WriteText(&text, TextOptions{RequireTLS: true}); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	checkGolden(t, "report.txt", text.Bytes())
	checkGolden(t, "report.json", js)

	// Colors only when asked for, and then around the status words.
	var colored bytes.Buffer
	rep.WriteText(&colored, TextOptions{Color: true})
	if bytes.Contains(text.Bytes(), []byte("\x1b[")) || !bytes.Contains(colored.Bytes(), []byte(ansiRed+"FAILED"+ansiReset)) {
		t.Errorf("colors: plain has escapes or colored lacks them")
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got:\n%s", name, got)
	}
}

// TestJSONFieldNames pins the documented JSON field names: monitoring
// depends on them (docs/probe.md).
func TestJSONFieldNames(t *testing.T) {
	rep := goldenReport(t)
	b, _ := json.Marshal(rep)
	var generic struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	want := []string{"host", "port", "address", "mode", "plan", "connected", "connect_ms", "banner",
		"ehlo_before_tls", "auth_before_tls", "starttls_offered", "tls", "ehlo_after_tls", "auth_after_tls",
		"warnings", "error", "transcript"}
	for _, k := range want {
		if _, ok := generic.Results[0][k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	var tlsFields map[string]json.RawMessage
	json.Unmarshal(generic.Results[0]["tls"], &tlsFields)
	for _, k := range []string{"version", "cipher", "handshake_ms", "server_name", "verify_name", "certificate",
		"chain_verified", "chain_error", "name_matches", "name_error", "valid"} {
		if _, ok := tlsFields[k]; !ok {
			t.Errorf("tls lacks %q", k)
		}
	}
	var certFields map[string]json.RawMessage
	json.Unmarshal(tlsFields["certificate"], &certFields)
	for _, k := range []string{"subject", "issuer", "sans", "not_before", "not_after", "days_left", "serial", "sha256", "chain"} {
		if _, ok := certFields[k]; !ok {
			t.Errorf("certificate lacks %q", k)
		}
	}
}
