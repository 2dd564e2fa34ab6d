// Package pgtest starts throwaway PostgreSQL servers for tests: a fresh
// cluster in a temporary directory (Debian's postgresql, initdb and pg_ctl
// of /usr/lib/postgresql/*/bin), run as the postgres user when the test
// runs as root, listening only on the loopback address the caller names,
// with fsync on. The server is stopped with pg_ctl at t.Cleanup; Stop and
// Start let fault tests crash it ("immediate") and bring it back.
//
// With CI=true a missing PostgreSQL fails the test; elsewhere it skips.
package pgtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options are the settings of one server. Addr is required.
type Options struct {
	// Addr is the loopback host:port the server listens on; port 0
	// picks a free one.
	Addr string
	// Settings are extra postgresql.conf lines (name → value, the value
	// written as given: quote strings yourself), applied after the
	// defaults (fsync = on, synchronous_commit = on, small buffers).
	Settings map[string]string
}

// Server is one running (or stopped) throwaway PostgreSQL.
type Server struct {
	t        testing.TB
	bin      string // directory of initdb, pg_ctl, psql
	dir      string // the temporary directory: data/, sock/, postgres.log
	host     string
	port     int
	password string
	cred     *syscall.Credential // nil when the test does not run as root

	mu      sync.Mutex
	running bool
}

// Bin returns the directory of the newest installed PostgreSQL's
// programs, or fails (CI=true) or skips the test when there is none.
func Bin(t testing.TB) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		missing(t, fmt.Errorf("no /usr/lib/postgresql/*/bin/pg_ctl"))
	}
	// The newest major version: numeric order of the directory names.
	sort.Slice(matches, func(i, j int) bool {
		return version(matches[i]) < version(matches[j])
	})
	return filepath.Dir(matches[len(matches)-1])
}

func version(pgctl string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgctl))))
	return v
}

func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required with CI=true (scripts/install-test-deps.sh installs postgresql): %v", err)
	}
	t.Skipf("PostgreSQL not available (run scripts/install-test-deps.sh): %v", err)
}

// Start creates a fresh cluster, starts it and registers its stop and
// removal with t.Cleanup. It fails the test when the server does not come
// up within a minute.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Bin(t)
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		t.Fatalf("pgtest: address %q: %v", o.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("pgtest: %q is not a loopback address", host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("pgtest: port %q: %v", portStr, err)
	}
	if port == 0 {
		port = freePort(t, host)
	}
	s := &Server{t: t, bin: bin, host: host, port: port, password: randomHex(t)}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parents are 0700 root's, closed to postgres.
	s.dir, err = os.MkdirTemp("", "smtpkit-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.cleanup)
	if err := os.Chmod(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"data", "sock"} {
		if err := os.Mkdir(filepath.Join(s.dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.LogPath(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		for _, p := range []string{filepath.Join(s.dir, "data"), filepath.Join(s.dir, "sock"), pwfile, s.LogPath()} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// --no-sync: the tests crash the server, not the machine; the
	// server's own fsync = on is what they rely on.
	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile, "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	conf := map[string]string{
		"listen_addresses":        quote(host),
		"port":                    strconv.Itoa(port),
		"unix_socket_directories": quote(filepath.Join(s.dir, "sock")),
		"fsync":                   "on",
		"synchronous_commit":      "on",
		"full_page_writes":        "on",
		"shared_buffers":          "32MB",
		"max_connections":         "100",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
	}
	for k, v := range o.Settings {
		conf[k] = v
	}
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func randomHex(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// freePort returns a port on host that was free a moment ago.
func freePort(t testing.TB, host string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "postgres.log") }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// DSN is a postgres:// URL for the database postgres as the superuser
// postgres (password authentication over TCP, no TLS).
func (s *Server) DSN() string { return s.DSNFor("postgres") }

// DSNFor is DSN for the database db (see CreateDatabase).
func (s *Server) DSNFor(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", s.password),
		Host:     s.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// run runs one of PostgreSQL's programs as the postgres user.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + s.dir}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Start starts the (stopped) server and waits until it accepts
// connections. Start after Stop("immediate") runs crash recovery.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	// -w waits until pg_isready; -t bounds it.
	out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.dataDir(), "-l", s.LogPath())
	if err != nil {
		log, _ := os.ReadFile(s.LogPath())
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(log))
	}
	s.running = true
	return nil
}

// Stop stops the server with pg_ctl's mode: "smart", "fast" (roll back
// and stop) or "immediate" (no shutdown checkpoint: the next Start
// recovers from the WAL, as after a crash).
func (s *Server) Stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	out, err := s.run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", s.dataDir())
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	s.running = false
	return nil
}

// Running reports whether the server was started and not stopped since.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// PID is the postmaster's process id, 0 when it is not running.
func (s *Server) PID() int {
	b, err := os.ReadFile(filepath.Join(s.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Exec runs SQL with psql over the server's private Unix socket as the
// superuser, in database postgres, stopping at the first error. It
// returns psql's output (unaligned, tuples only).
func (s *Server) Exec(sql string) (string, error) {
	return s.ExecIn("postgres", sql)
}

// ExecIn is Exec in the database db.
func (s *Server) ExecIn(db, sql string) (string, error) {
	out, err := s.run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", filepath.Join(s.dir, "sock"), "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", db, "-c", sql)
	if err != nil {
		return string(out), fmt.Errorf("psql: %v: %s", err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// CreateDatabase creates the database name and returns its DSN, so that
// tests sharing one server keep their data apart.
func (s *Server) CreateDatabase(name string) (string, error) {
	if _, err := s.Exec("CREATE DATABASE " + `"` + strings.ReplaceAll(name, `"`, `""`) + `"`); err != nil {
		return "", err
	}
	return s.DSNFor(name), nil
}

func (s *Server) cleanup() {
	if s.Running() {
		if err := s.Stop("fast"); err != nil {
			s.t.Logf("pgtest: %v", err)
			if pid := s.PID(); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
				// Let the postmaster's children see it gone.
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
	}
	if s.t.Failed() {
		b, _ := os.ReadFile(s.LogPath())
		s.t.Logf("pgtest: postgres.log:\n%s", tail(b))
	}
	os.RemoveAll(s.dir)
}

// tail is the last 4 KiB of a log.
func tail(b []byte) []byte {
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return b
}
