package userdb

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestAdminFlag: AddAdmin marks the account, the mark is in the file and
// survives a password change, SetAdmin changes it, Authenticate returns it.
func TestAdminFlag(t *testing.T) {
	f, path := newStore(t)
	must(t, f.AddAdmin("Root@Example.com", "admin-pw"))
	must(t, f.Add("alice@example.com", "alice-pw"))
	a, err := f.Authenticate(context.Background(), "root@example.com", "admin-pw")
	if err != nil || !a.Admin {
		t.Fatalf("root: %+v %v, want an admin", a, err)
	}
	if a, _ := f.Lookup("alice@example.com"); a.Admin {
		t.Error("alice is admin")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"admin": true`); n != 1 {
		t.Errorf("file has %d admin marks, want 1:\n%s", n, raw)
	}
	must(t, f.SetPassword("root@example.com", "new-pw"))
	if a, _ := f.Lookup("root@example.com"); !a.Admin {
		t.Error("the admin mark was lost by SetPassword")
	}
	must(t, f.SetAdmin("alice@example.com", true))
	must(t, f.SetAdmin("root@example.com", false))
	// A second File reads the marks from disk.
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var admins []string
	for _, a := range g.List() {
		if a.Admin {
			admins = append(admins, a.Address)
		}
	}
	if len(admins) != 1 || admins[0] != "alice@example.com" {
		t.Errorf("admins after SetAdmin: %q", admins)
	}
	if err := f.SetAdmin("nobody@example.com", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetAdmin of an unknown account: %v", err)
	}
}
