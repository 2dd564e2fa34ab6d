package pgtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartStopCrash starts a server on 127.17.4.1, writes a row over
// TCP with the DSN's password, crashes the server (pg_ctl stop -m
// immediate), starts it again and finds the committed row after WAL
// recovery; a second database keeps its data apart.
func TestStartStopCrash(t *testing.T) {
	s := Start(t, Options{Addr: "127.17.4.1:0", Settings: map[string]string{"max_connections": "20"}})
	psql := filepath.Join(Bin(t), "psql")
	tcp := func(dsn, sql string) string {
		t.Helper()
		out, err := exec.Command(psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v %s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := tcp(s.DSN(), "SHOW fsync"); got != "on" {
		t.Errorf("fsync = %q, want on", got)
	}
	if got := tcp(s.DSN(), "SHOW max_connections"); got != "20" {
		t.Errorf("max_connections = %q, want 20 (Options.Settings)", got)
	}
	if got := tcp(s.DSN(), "SHOW listen_addresses"); got != "127.17.4.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	tcp(s.DSN(), "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
	wrong := strings.Replace(s.DSN(), s.password, "wrong", 1)
	if out, err := exec.Command(psql, "-X", wrong, "-c", "SELECT 1").CombinedOutput(); err == nil {
		t.Errorf("a wrong password was accepted: %s", out)
	}
	other, err := s.CreateDatabase("other")
	if err != nil {
		t.Fatal(err)
	}
	if got := tcp(other, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"); got != "0" {
		t.Errorf("database other sees table t: %s", got)
	}
	pid := s.PID()
	if pid == 0 {
		t.Fatal("no postmaster.pid")
	}
	if err := s.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	if s.Running() || s.PID() != 0 {
		t.Fatalf("running after Stop: %v pid %d", s.Running(), s.PID())
	}
	if out, err := exec.Command(psql, "-X", s.DSN(), "-c", "SELECT 1").CombinedOutput(); err == nil {
		t.Fatalf("connected to a stopped server: %s", out)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if got := tcp(s.DSN(), "SELECT v FROM t"); got != "kept" {
		t.Errorf("after crash recovery: %q, want kept", got)
	}
	if out, err := s.Exec("SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("Exec over the socket: %q %v", out, err)
	}
}
