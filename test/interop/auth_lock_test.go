package interop

// auth_lock_test.go: what a password guesser can learn from AUTH. The
// account lock answers the right and the wrong password alike, and an
// unknown name alike to a known one, from many source addresses
// (127.11.x.y); SCRAM-SHA-256 gives an unknown name a salt that is stable
// across sessions and restarts.

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsFrom connects from ip to s's implicit-TLS submissions listener and
// reads the greeting and the EHLO reply. It reports errors instead of
// failing the test, so any goroutine may use it.
func tlsFrom(t *testing.T, conf *tls.Config, ip, addr string) (*Conn, error) {
	c, err := dialFrom(t, ip, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c.nc, conf)
	if err := tc.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS handshake from %s: %w", ip, err)
	}
	c.nc, c.r = tc, newReader(tc)
	return c, openSession(c)
}

// authTranscript runs one AUTH exchange from ip: it sends the lines one
// at a time, each after the 334 to the previous one, and returns every
// reply as it came off the wire, up to the first one that is not a 334.
func authTranscript(t *testing.T, conf *tls.Config, ip, addr string, lines []string) (string, error) {
	c, err := tlsFrom(t, conf, ip, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var out []string
	for _, l := range lines {
		if err := writeRaw(c, l+"\r\n"); err != nil {
			return "", err
		}
		r, err := awaitReply(c, loadPhase) // up to 8 s of delay, plus the wait for a hash slot
		if err != nil {
			return "", fmt.Errorf("%s: %w", l, err)
		}
		out = append(out, r.String())
		if r.Code != 334 {
			break
		}
	}
	return strings.Join(out, "\n"), nil
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// scramFirst is a client-first-message for user with a fixed nonce.
func scramFirst(user string) string {
	return "AUTH SCRAM-SHA-256 " + b64s("n,,n="+user+",r=fixedclientnonce0123")
}

// attemptLines are complete logins as user with password pw in each
// mechanism. SCRAM's stops at client-first: a locked account answers it
// before any proof, and for the salt that is all the test needs.
func attemptLines(user, pw string) map[string][]string {
	return map[string][]string{
		"PLAIN":         {"AUTH PLAIN " + plainResponse(user, pw)},
		"LOGIN":         {"AUTH LOGIN", b64s(user), b64s(pw)},
		"SCRAM-SHA-256": {scramFirst(user)},
	}
}

// TestAuthAccountLock locks a known account and an unknown name with ten
// wrong passwords each from ten source addresses at once. Then, from
// twelve fresh addresses at once, PLAIN, LOGIN and SCRAM-SHA-256 with the
// right and the wrong password get byte-identical replies for the
// account, and the same ones for the unknown name; the log shows that no
// password was checked and that every attempt got the same delay. Before
// the fix the right password got 454 at once and a wrong one 535 after
// 8 s.
func TestAuthAccountLock(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	const unknown = "nobody@test.example"
	conf := TLSConfig(t, s)
	run := func(phase string, jobs map[string]func() (string, error)) map[string]string {
		t.Helper()
		var mu sync.Mutex
		out := map[string]string{}
		errs := make(chan error, len(jobs))
		var wg sync.WaitGroup
		for name, job := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := job()
				if err != nil {
					errs <- fmt.Errorf("%s %s: %w", phase, name, err)
				}
				mu.Lock()
				out[name] = got
				mu.Unlock()
			}()
		}
		waitGroup(t, &wg, loadPhase, phase)
		firstErrors(t, errs, phase)
		return out
	}

	lockUp := map[string]func() (string, error){}
	for i := range 10 {
		ip := fmt.Sprintf("127.11.0.%d", i+1)
		for _, user := range []string{aliceAddr, unknown} {
			lockUp[ip+" "+user] = func() (string, error) {
				return authTranscript(t, conf, ip, s.Submissions, attemptLines(user, wrongPW)["PLAIN"])
			}
		}
	}
	for name, got := range run("lock-up", lockUp) {
		if !strings.HasPrefix(got, "535 5.7.8") {
			t.Errorf("lock-up %s: %q, want 535 5.7.8", name, got)
		}
	}
	failedBefore := strings.Count(s.Logs(), "auth failed")

	locked := map[string]func() (string, error){}
	n := 0
	for _, user := range []string{aliceAddr, unknown} {
		for _, pw := range []string{alicePW, wrongPW} {
			for mech, lines := range attemptLines(user, pw) {
				n++
				ip := fmt.Sprintf("127.11.1.%d", n)
				locked[user+" "+pw+" "+mech] = func() (string, error) {
					return authTranscript(t, conf, ip, s.Submissions, lines)
				}
			}
		}
	}
	got := run("locked", locked)
	for mech := range attemptLines("", "") {
		want := got[aliceAddr+" "+alicePW+" "+mech]
		if !strings.HasSuffix(want, "454 4.7.0 Too many failed logins for this account, try again later") {
			t.Errorf("%s, right password, locked account: %q, want 454 4.7.0", mech, want)
		}
		for _, other := range []string{aliceAddr + " " + wrongPW, unknown + " " + alicePW, unknown + " " + wrongPW} {
			if g := got[other+" "+mech]; g != want {
				t.Errorf("%s on a locked name: %s got\n%q\nthe right password got\n%q", mech, other, g, want)
			}
		}
	}
	logs := s.Logs()
	if n := strings.Count(logs, "auth failed"); n != failedBefore {
		t.Errorf("%d passwords checked while the account was locked, want none", n-failedBefore)
	}
	delays := regexp.MustCompile(`auth refused, account locked" .*delay=(\S+)`).FindAllStringSubmatch(logs, -1)
	if len(delays) != len(locked) {
		t.Fatalf("%d locked-account log lines, want %d", len(delays), len(locked))
	}
	for _, d := range delays {
		if d[1] != "8s" {
			t.Errorf("a locked attempt was delayed %s, want the lock's 8s for every one", d[1])
		}
	}
}

// scramParams does client-first for user from ip and returns the salt and
// iteration count of the server-first-message.
func scramParams(t *testing.T, conf *tls.Config, ip, addr, user string) string {
	t.Helper()
	got, err := authTranscript(t, conf, ip, addr, []string{scramFirst(user)})
	if err != nil {
		t.Fatal(err)
	}
	code, challenge, _ := strings.Cut(got, " ")
	raw, err := base64.StdEncoding.DecodeString(challenge)
	if code != "334" || err != nil {
		t.Fatalf("SCRAM client-first for %s: %q", user, got)
	}
	m := regexp.MustCompile(`^r=fixedclientnonce0123[^,]+,(s=[A-Za-z0-9+/=]+,i=[0-9]+)$`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("server-first-message %q", raw)
	}
	return m[1]
}

// TestAuthScramDecoy: SCRAM-SHA-256 gives an unknown name the same salt
// and iteration count in every session and after a restart, a different
// one for a different name, shaped like a real account's (RFC 5802 §9),
// from a secret kept in <data_dir>/secret with mode 0600. The cancelled
// exchanges count as failures. Before the fix the salt of an unknown name
// was new in every session.
func TestAuthScramDecoy(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	conf := TLSConfig(t, s)
	ip := func(i int) string { return fmt.Sprintf("127.11.2.%d", i) }
	known := scramParams(t, conf, ip(1), s.Submissions, aliceAddr)
	a1 := scramParams(t, conf, ip(2), s.Submissions, "nobody@test.example")
	a2 := scramParams(t, conf, ip(3), s.Submissions, "nobody@test.example")
	b := scramParams(t, conf, ip(4), s.Submissions, "somebody@test.example")
	if a1 != a2 {
		t.Errorf("unknown name: %q, then %q; want the same salt every session", a1, a2)
	}
	if a1 == b {
		t.Errorf("two unknown names got the same salt %q", a1)
	}
	shape := regexp.MustCompile(`^s=[A-Za-z0-9+/]{22}==,i=4096$`)
	if !shape.MatchString(a1) || !shape.MatchString(known) {
		t.Errorf("unknown %q, known %q: want both a 16-byte salt and 4096 iterations", a1, known)
	}
	if again := scramParams(t, conf, ip(5), s.Submissions, aliceAddr); again != known {
		t.Errorf("known account: %q, then %q", known, again)
	}
	fi, err := os.Stat(filepath.Join(s.DataDir, "secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server secret: %v, %v; want a 0600 file", fi, err)
	}
	s.Restart(t)
	if after := scramParams(t, conf, ip(6), s.Submissions, "nobody@test.example"); after != a1 {
		t.Errorf("unknown name after a restart: %q, before %q", after, a1)
	}
	// Each of those sessions ended mid-exchange: all counted (the last
	// one as soon as the server reads the close).
	waitUntil(t, pollTimeout, "six aborted exchanges logged", func() bool { return strings.Count(s.Logs(), "auth aborted") == 6 })
}
