package mtasts

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
)

// pythonServer is Python's http.server over its ssl module (OpenSSL): a
// policy host that is not our own Go code. It serves dir.
const pythonServer = `
import http.server, os, ssl, sys
os.chdir(sys.argv[1])
srv = http.server.ThreadingHTTPServer((sys.argv[2], 0), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[3], sys.argv[4])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
`

// TestFetchFromPython fetches a policy from Python's HTTPS server, with a
// certificate of our test CA (fetched) and a self-signed one (refused).
func TestFetchFromPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required in CI (scripts/install-test-deps.sh): %v", err)
		}
		t.Skip("python3 not installed (scripts/install-test-deps.sh)")
	}
	ca := testcert.New(t, "smtpkit mtasts test CA")
	tests := []struct {
		name    string
		cert    func() tls.Certificate
		want    Mode
		wantErr tlsrpt.ResultType
	}{
		{"CA-issued certificate", func() tls.Certificate { return issue(t, ca, nil, policyHost) }, Enforce, ""},
		{"self-signed certificate", func() tls.Certificate { return testcert.New(t, policyHost) }, "", tlsrpt.STSWebPKIInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "www")
			if err := os.MkdirAll(filepath.Join(root, ".well-known"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, wellKnownPath), []byte(goodPolicy), 0o644); err != nil {
				t.Fatal(err)
			}
			certFile, keyFile := writeChain(t, tt.cert(), dir)
			ip := testIP()
			cmd := exec.Command(python, "-c", pythonServer, root, ip, certFile, keyFile)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("python did not start: %v", err)
			}
			port, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				t.Fatalf("python printed %q", line)
			}
			e := &env{srv: &policyServer{IP: ip}, dns: &swapResolver{}, clock: newClock(), dir: dir}
			e.setDNS(t, txt1, hostUp)
			e.opts = Options{Dir: filepath.Join(dir, "cache"), Resolver: e.dns, Roots: testcert.Pool(ca), Port: port, Now: e.clock.Now, AllowLoopback: true}
			e.open(t)
			p, err := e.cache.Lookup(t.Context(), domain)
			checkResult(t, p, err, tt.want, tt.wantErr, "")
			if tt.want != "" && !p.Matches("a.mx.example.com") {
				t.Errorf("policy %+v", p)
			}
		})
	}
}

// writeChain writes cert's chain and key as PEM files in dir.
func writeChain(t *testing.T, cert tls.Certificate, dir string) (certFile, keyFile string) {
	t.Helper()
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
