package interop

// auth_store_test.go: the running server and a broken account store.

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestAuthStoreReloadFailureLogged: when accounts.json becomes malformed
// the server logs that at error level with the reason, keeps serving the
// accounts it had, logs it again on SIGHUP, and takes up a good file once
// there is one. Before the fix there was no log line at all.
func TestAuthStoreReloadFailureLogged(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	path := filepath.Join(s.DataDir, "accounts.json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := submissionConn(t, s)
	login(t, c, aliceAddr, alicePW) // the server has read the accounts
	if err := os.WriteFile(path, []byte(`{"version":1,"accounts":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ = submissionConn(t, s)
	login(t, c, aliceAddr, alicePW) // the last good accounts still work
	waitLog(t, s, "account store reload failed", 1)
	line := regexp.MustCompile(`(?m)^.*account store reload failed.*$`).FindString(s.Logs())
	if !regexp.MustCompile(`level=ERROR .*path=\S+accounts\.json .*err=.*unexpected EOF`).MatchString(line) {
		t.Errorf("reload failure logged as %q, want an error line with the path and the reason", line)
	}
	s.hup(t)
	waitLog(t, s, "account store reload failed", 2)

	if err := os.WriteFile(path+".new", good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	c, _ = submissionConn(t, s)
	login(t, c, bobAddr, bobPW)
	waitLog(t, s, "account store reloaded", 1)
}
