// Package interop tests the real smtpkit binary against real, independent
// SMTP software (Python smtplib, swaks, curl, openssl) and raw sockets, over
// loopback. The harness in this file starts `smtpkit serve` on free ports
// with its own data directory; the other files drive peers against it.
//
// Peers are found on PATH (scripts/install-test-deps.sh installs them). A
// missing peer skips its test, except with CI=true, where it fails.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the harness; every wait is a bounded poll, never a sleep.
const (
	readyTimeout = 20 * time.Second      // server start until "smtpkit: ready"
	stopTimeout  = 15 * time.Second      // SIGTERM until exit, then SIGKILL
	pollTimeout  = 10 * time.Second      // filesystem conditions
	pollStep     = 20 * time.Millisecond // filesystem poll interval
	buildTimeout = 5 * time.Minute       // go build of the binary
	readyLine    = "smtpkit: ready"      // what serve prints once it listens
	testHostname = "mx.test.example"     // the server's hostname and cert name
	testDomain   = "test.example"        // the local domain
	binaryName   = "smtpkit"             // the built binary's file name
)

// binary builds cmd/smtpkit once per test run. TestMain owns its directory.
type binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// build returns the path of the binary, building it on first use. The
// binary is built with -race when the tests are, so data races in the
// server show up in its stderr (and fail the test, see Server.stop).
func (b *binary) build() (string, error) {
	b.once.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(b.dir, binaryName)
		args := []string{"build", "-o", b.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/smtpkit")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	return b.path, b.err
}

// smtpkitBinary is set once by TestMain before any test runs and never
// reassigned; the binary it describes is built lazily on first use.
var smtpkitBinary *binary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smtpkit-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	smtpkitBinary = &binary{dir: dir}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ServerOptions adjusts the config StartServer writes. Zero values give the
// config documented in docs/testing.md.
type ServerOptions struct {
	// Domains are extra local domains besides test.example.
	Domains []string
	// MessageSize is limits.message_size; "" means "1MiB".
	MessageSize string
	// Recipients is limits.recipients; 0 means 100.
	Recipients int
	// AltSubmission adds a second submission listener (tls = "required"),
	// like the default port 2525.
	AltSubmission bool
	// ExtraTOML is appended to the config verbatim. It lands after the
	// [limits] table, so it must start with a table header of its own.
	ExtraTOML string
	// TopTOML is put at the top of the config, before any table: for
	// top-level keys. Unless it sets trusted_networks, the config has
	// trusted_networks = [] (the clients of the tests, all on loopback,
	// are untrusted); per-listener trusted_networks go in ListenerTOML.
	TopTOML string
	// ListenerTOML, by role ("mx", "submission", "submissions"), is
	// appended to the [[listener]] tables of that role: per-listener keys.
	ListenerTOML map[string]string
	// IP is the loopback address every listener binds; "" = 127.0.0.1.
	// A test in its own range (docs/testing.md) can listen there.
	IP string
	// MXPort, when set, is the mx listener's port on IP (nodes of a
	// cluster share one port on their own addresses); the other
	// listeners still get free ports.
	MXPort int
}

// Server is a running `smtpkit serve` process on free loopback ports with
// its own temporary data directory.
type Server struct {
	Dir        string // temporary directory holding the config and data
	DataDir    string // data_dir of the config
	ConfigPath string // the TOML file serve runs with
	CertPath   string // the dev self-signed certificate (PEM)

	// Listener addresses (host:port). AltSubmission is "" unless asked for.
	MX, Submission, Submissions, AltSubmission string

	bin  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	logs *syncBuffer   // stderr and stdout of every run, for failure output
}

// StartServer builds the binary (once per run), writes a config with free
// ports, starts `smtpkit serve` and waits until it prints "smtpkit: ready".
// The process is stopped with SIGTERM when the test ends.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatalf("building smtpkit: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		Dir:        dir,
		DataDir:    filepath.Join(dir, "data"),
		ConfigPath: filepath.Join(dir, "smtpkit.toml"),
		bin:        bin,
		logs:       &syncBuffer{},
	}
	s.CertPath = filepath.Join(s.DataDir, "tls", "selfsigned.crt")
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() || testing.Verbose() {
			t.Logf("smtpkit output:\n%s", s.logs.String())
		}
	})
	// freeAddr's port can be taken by another test between its check and
	// our bind (tests of several packages run at once): then try new ports.
	for attempt := 1; ; attempt++ {
		ip := or(opts.IP, "127.0.0.1")
		s.MX, s.Submission, s.Submissions = freeAddrOn(t, ip), freeAddrOn(t, ip), freeAddrOn(t, ip)
		if opts.MXPort != 0 {
			s.MX = net.JoinHostPort(ip, strconv.Itoa(opts.MXPort))
		}
		if opts.AltSubmission {
			s.AltSubmission = freeAddrOn(t, ip)
		}
		if err := os.WriteFile(s.ConfigPath, []byte(s.config(opts)), 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.tryStart()
		if err == nil {
			return s
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("port taken meanwhile, new ports (attempt %d)", attempt+1)
	}
}

// config renders the TOML file for opts.
func (s *Server) config(opts ServerOptions) string {
	size := opts.MessageSize
	if size == "" {
		size = "1MiB"
	}
	rcpts := opts.Recipients
	if rcpts == 0 {
		rcpts = 100
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\ndata_dir = %q\n", testHostname, s.DataDir)
	if opts.TopTOML != "" {
		b.WriteString(opts.TopTOML + "\n")
	}
	if !setsTopKey(opts.TopTOML, "trusted_networks") {
		// Every client of these tests dials from loopback, which the
		// default trusts (relay without AUTH, no per-IP limits): the
		// tests assume an untrusted client unless they say otherwise.
		b.WriteString("trusted_networks = []\n")
	}
	b.WriteString("\n")
	b.WriteString("[log]\nformat = \"text\"\nlevel = \"debug\"\n\n")
	for _, d := range append([]string{testDomain}, opts.Domains...) {
		fmt.Fprintf(&b, "[[domain]]\nname = %q\n\n", d)
	}
	listener := func(addr, role, tls string) {
		fmt.Fprintf(&b, "[[listener]]\naddress = %q\nrole = %q\ntls = %q\n", addr, role, tls)
		if extra := opts.ListenerTOML[role]; extra != "" {
			b.WriteString(extra + "\n")
		}
		b.WriteString("\n")
	}
	listener(s.MX, "mx", "opportunistic")
	listener(s.Submission, "submission", "required")
	listener(s.Submissions, "submissions", "implicit")
	if s.AltSubmission != "" {
		listener(s.AltSubmission, "submission", "required")
	}
	b.WriteString("[tls]\nself_signed = true\n\n")
	fmt.Fprintf(&b, "[limits]\nmessage_size = %q\nrecipients = %d\n", size, rcpts)
	if opts.ExtraTOML != "" {
		b.WriteString("\n" + opts.ExtraTOML + "\n")
	}
	return b.String()
}

// setsTopKey reports whether the top-level TOML top sets key.
func setsTopKey(top, key string) bool {
	for _, line := range strings.Split(top, "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// start runs serve and waits for the ready line on stdout.
func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := s.tryStart(); err != nil {
		t.Fatal(err)
	}
}

// tryStart is start that returns its failure.
func (s *Server) tryStart() error {
	cmd := exec.Command(s.bin, "serve", "-config", s.ConfigPath)
	cmd.Dir = s.Dir
	cmd.Stderr = s.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting smtpkit serve: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		// Copy stdout into the logs, signalling the ready line once; the
		// pipe must be drained before Wait.
		br := bufio.NewReader(stdout)
		signalled := false
		for {
			line, err := br.ReadString('\n')
			s.logs.Write([]byte(line))
			if !signalled && strings.Contains(line, readyLine) {
				signalled = true
				close(ready)
			}
			if err != nil {
				break
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
		return nil
	case <-s.done:
		return fmt.Errorf("smtpkit serve exited before %q: %v\n%s", readyLine, cmd.ProcessState, s.logs.String())
	case <-time.After(readyTimeout):
		return fmt.Errorf("smtpkit serve not ready after %v\n%s", readyTimeout, s.logs.String())
	}
}

// running reports whether the current process is still alive.
func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits (SIGKILL after stopTimeout) and reports a
// non-zero exit or a data race in the logs as a test error.
func (s *Server) stop(t testing.TB) {
	t.Helper()
	if !s.running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if !s.cmd.ProcessState.Success() {
			t.Errorf("smtpkit serve exited with %v after SIGTERM", s.cmd.ProcessState)
		}
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("smtpkit serve still running %v after SIGTERM; killed", stopTimeout)
	}
	if strings.Contains(s.logs.String(), "WARNING: DATA RACE") {
		t.Errorf("data race reported by smtpkit serve")
	}
}

// Stop shuts the server down gracefully (SIGTERM) and waits for it to
// exit, so that every session has finished when it returns.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop(t)
}

// Kill9 kills the server with SIGKILL, as a crash or power loss would.
func (s *Server) Kill9(t testing.TB) {
	t.Helper()
	if !s.running() {
		t.Fatal("Kill9: server not running")
	}
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again with the same config, ports and data
// directory, stopping it first if it is still running.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop(t)
	fmt.Fprintf(s.logs, "--- harness: restart\n")
	s.start(t)
}

// Logs returns everything the server printed so far (stderr and stdout).
func (s *Server) Logs() string { return s.logs.String() }

// AddUser creates an account with `smtpkit user add`, the password on stdin.
func (s *Server) AddUser(t testing.TB, addr, password string) {
	t.Helper()
	cmd := exec.Command(s.bin, "user", "add", "-config", s.ConfigPath, addr)
	cmd.Dir = s.Dir
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smtpkit user add %s: %v\n%s", addr, err, out)
	}
}

// Maildir returns the Maildir of addr: <data_dir>/mail/<domain>/<local>.
func (s *Server) Maildir(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	return filepath.Join(s.DataDir, "mail", addr[at+1:], addr[:at])
}

// WaitMessages polls new/ of addr's Maildir until it holds n messages and
// returns their contents, oldest first. More than n messages is an error.
func (s *Server) WaitMessages(t *testing.T, addr string, n int) [][]byte {
	t.Helper()
	dir := filepath.Join(s.Maildir(addr), "new")
	var names []string
	for deadline := time.Now().Add(pollTimeout); ; {
		names = listFiles(t, dir)
		if len(names) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollStep) // polling a filesystem condition, bounded above
	}
	if len(names) != n {
		t.Fatalf("%s: %d messages in new/, want %d", addr, len(names), n)
	}
	msgs := make([][]byte, len(names))
	for i, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = b
	}
	return msgs
}

// CountFiles returns how many files sub ("new", "tmp", "cur") of addr's
// Maildir holds now; a missing directory holds none.
func (s *Server) CountFiles(t *testing.T, addr, sub string) int {
	t.Helper()
	return len(listFiles(t, filepath.Join(s.Maildir(addr), sub)))
}

// listFiles returns the regular files in dir ordered by modification time,
// then name; a missing dir is empty.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue // renamed away meanwhile, or not a message
		}
		files = append(files, file{e.Name(), info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].name < files[j].name
	})
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	return names
}

// StripTrace removes what the server prepends to a delivered message: a
// leading Return-Path line and the first Received header with its folded
// continuation lines (RFC 5322 §2.2.3). Lines may end in CRLF or LF. What
// remains must be the message exactly as the client sent it.
func StripTrace(msg []byte) []byte {
	rest := msg
	if hasFieldPrefix(rest, "Return-Path:") {
		rest = afterLine(rest)
	}
	if !hasFieldPrefix(rest, "Received:") {
		return rest
	}
	rest = afterLine(rest)
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = afterLine(rest)
	}
	return rest
}

// hasFieldPrefix reports whether b starts with the header field name
// prefix, compared case-insensitively.
func hasFieldPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// afterLine returns b after its first LF (everything if there is none).
func afterLine(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	return b[i+1:]
}

// Need returns the path of tool. When it is missing the test is skipped,
// or fails when CI=true: CI must run every interop test.
func Need(t *testing.T, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		missing(t, tool, err)
	}
	return path
}

// NeedPython returns Debian's /usr/bin/python3, which has aiosmtpd, rather
// than whichever python3 comes first on PATH.
func NeedPython(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		missing(t, python, err)
	}
	return python
}

func missing(t *testing.T, tool string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required with CI=true (scripts/install-test-deps.sh installs it): %v", tool, err)
	}
	t.Skipf("%s not available (run scripts/install-test-deps.sh): %v", tool, err)
}

// freeAddr returns a loopback host:port that was free a moment ago. Another
// process can still take it before the caller binds it (StartServer retries
// then). It never returns a port it returned before in this test process:
// the kernel readily hands a just-closed port out again, and two listeners
// of one config on the same port make serve refuse the config.
func freeAddr(t *testing.T) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn is freeAddr on the loopback address ip.
func freeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	var held []net.Listener // ports handed out before, kept busy meanwhile
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if handedOut.ports[addr] {
			held = append(held, l)
			continue
		}
		l.Close()
		handedOut.ports[addr] = true
		return addr
	}
	t.Fatal("freeAddr: no loopback port not handed out before")
	return ""
}

// handedOut is what freeAddr has returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// syncBuffer is a bytes.Buffer safe for the writer goroutines of a process
// and the test reading it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
