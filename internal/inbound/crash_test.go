package inbound

// crash_test.go: power-loss simulation of the fan-out of one message to
// local Maildirs and the outbound queue on one crashfs (issue #11 item 2).
// The power is cut at every operation boundary of concurrent fan-outs (and
// the file system comes back strict or with random write-back); after
// recovery every acknowledged message must be, for each local mailbox,
// in its Maildir or queued for it, once, and queued once for its remote
// recipient; nothing visible may be half-written.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/authres"
	"smtpkit/internal/local"
	"smtpkit/internal/maildir"
	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/vfs/crashfs"
	"smtpkit/internal/wal"
)

const (
	crashMail  = "/srv/data/mail"
	crashQueue = "/srv/data/queue"
	crashWAL   = "/srv/data/journal"
	crashFrom  = "alice@example.com"
)

// mapAccounts is an account store in memory: every address is its own
// mailbox.
type mapAccounts map[string]bool

func (m mapAccounts) Resolve(a string) ([]string, bool) {
	if !m[a] {
		return nil, false
	}
	return []string{a}, true
}
func (m mapAccounts) Owns(account, addr string) bool { return account == addr }

// crashBody is message i. Odd messages also go to carol, whose Maildir is
// broken (its new/ is a file), so their local copy for her takes the
// queue's way (AddLocal).
func crashBody(i int) string {
	return fmt.Sprintf("Subject: %d\r\n\r\n", i) + strings.Repeat(fmt.Sprintf("fan-out message %d\r\n", i), 20+i*7)
}

func crashRcpts(i int) []string {
	r := []string{"bob@example.com", fmt.Sprintf("r%d@far.example", i)}
	if i%2 == 1 {
		r = append(r, "carol@example.com")
	}
	return r
}

var crashBoxes = []string{"bob@example.com", "carol@example.com"}

// crashSetup makes carol's broken Maildir, durably.
func crashSetup(t *testing.T, fsys *crashfs.FS) {
	t.Helper()
	carol := filepath.Join(crashMail, "example.com", "carol")
	for _, d := range []string{filepath.Join(carol, "tmp"), filepath.Join(carol, "cur")} {
		if err := fsys.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f, err := fsys.OpenFile(filepath.Join(carol, "new"), 0o101, 0o600) // O_WRONLY|O_CREAT
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fsys.SyncFS("/"); err != nil {
		t.Fatal(err)
	}
}

// fanOutRun is one life of the workload.
type fanOutRun struct {
	mu    sync.Mutex
	acked map[int]string // message index → reply id
	// verify sends the messages as mail arriving on mx under [verify]:
	// held, then written with crashAR on top of every copy.
	verify bool
}

// crashAR is the Authentication-Results field of a verified run.
const crashAR = "Authentication-Results: mx.example.com;\r\n\tspf=pass smtp.mailfrom=alice@example.com\r\n"

// crashCheck is the check of a verified run: it does nothing and passes.
type crashCheck struct{}

func (crashCheck) Write(p []byte) (int, error) { return len(p), nil }
func (crashCheck) Finish() authres.Result      { return authres.Result{Header: crashAR} }
func (crashCheck) Abort()                      {}

const (
	fanWriters   = 3
	fanPerWriter = 2
)

// openFanOut wires a Backend and a queue on fsys, as serve does, on the
// machine's boot boot; in journal mode it first replays what the journal
// holds. The returned func closes what it opened.
func openFanOut(fsys *crashfs.FS, mode maildir.Sync, boot string) (*Backend, *queue.Queue, func(), error) {
	writer := maildir.NewWriter(nil)
	writer.SetSync(mode)
	writer.SetFS(fsys)
	writer.SetBootID(boot)
	closeJournal := func() {}
	if mode == maildir.SyncJournal {
		// Tiny segments, so that concurrent fan-outs rotate them.
		log, err := wal.OpenOptions(crashWAL, wal.Options{FS: fsys, SegmentSize: 4 << 10, PreallocSize: 8 << 10})
		if err != nil {
			return nil, nil, nil, err
		}
		if _, err := maildir.Recover(log, writer); err != nil {
			log.Close()
			return nil, nil, nil, err
		}
		// No checkpoint before the end of the run (the interval is never
		// reached): the replay after a crash has records to apply.
		writer.SetJournal(log, time.Hour, nil)
		closeJournal = func() { writer.CloseJournal() }
	}
	accounts := mapAccounts{"alice@example.com": true, "bob@example.com": true, "carol@example.com": true}
	store := local.New(local.Options{Domains: []string{"example.com"}, Accounts: accounts, MailDir: crashMail,
		Writer: writer, Logger: slog.New(slog.DiscardHandler)})
	q, err := queue.Open(queue.Options{Dir: crashQueue, FS: fsys, Courier: &remoteRecorder{got: map[string]int{}},
		Local: localCourier{store}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		closeJournal()
		return nil, nil, nil, err
	}
	b := New(Options{Local: store, Accounts: accounts, Relay: QueueRelay(queue.LocalBackend(q)), Logger: slog.New(slog.DiscardHandler)})
	return b, q, func() { q.Close(); closeJournal() }, nil
}

// The boots of a run and of the recovery after its power loss: a journal
// replay rewrites what the power loss took only on a new boot.
const (
	bootRun     = "11111111-1111-1111-1111-111111111111"
	bootRecover = "22222222-2222-2222-2222-222222222222"
)

func (r *fanOutRun) run(fsys *crashfs.FS, mode maildir.Sync) {
	r.acked = map[int]string{}
	b, _, closeAll, err := openFanOut(fsys, mode, bootRun)
	if err != nil {
		return
	}
	defer closeAll()
	session := &server.SessionInfo{AuthUser: crashFrom}
	if r.verify {
		session = &server.SessionInfo{Role: server.RoleMX}
		b.opts.Verify = &Verification{
			Begin:  func(context.Context, netip.Addr, string, smtp.Address) Check { return crashCheck{} },
			IsOurs: func(string) bool { return false },
		}
	}
	var wg sync.WaitGroup
	for g := range fanWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range fanPerWriter {
				i := g*fanPerWriter + k
				env := &server.Envelope{ID: fmt.Sprint("E", i), Session: session, From: addr(crashFrom)}
				for _, a := range crashRcpts(i) {
					env.Recipients = append(env.Recipients, addr(a))
				}
				w, err := b.Begin(context.Background(), env)
				if err != nil {
					continue
				}
				if _, err := io.WriteString(w, crashBody(i)); err != nil {
					w.Abort()
					continue
				}
				id, err := w.Commit()
				if err != nil {
					continue // 4xx: the client would send it again
				}
				r.mu.Lock()
				r.acked[i] = id
				r.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// fanTally sums the checks.
type fanTally struct{ crashes, acked, viaQueue, unackedVisible, lost, duplicated int }

// check recovers Maildirs and queue from fsys and counts every copy.
func (r *fanOutRun) check(t *testing.T, fsys *crashfs.FS, mode maildir.Sync, how string, tally *fanTally) {
	t.Helper()
	tally.crashes++
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: "+format, append([]any{how}, args...)...)
	}
	_, q, closeAll, err := openFanOut(fsys, mode, bootRecover)
	if err != nil {
		fail("recovery: %v", err)
		return
	}
	defer closeAll()
	// copies[i][rcpt] counts message i's copies for rcpt: Maildir files and
	// queue entries.
	copies := map[int]map[string]int{}
	add := func(i int, rcpt string) {
		if copies[i] == nil {
			copies[i] = map[string]int{}
		}
		copies[i][rcpt]++
	}
	index := func(body string) (int, bool) {
		if r.verify {
			var ok bool
			if body, ok = strings.CutPrefix(body, crashAR); !ok {
				return 0, false
			}
		}
		var i int
		if _, err := fmt.Sscanf(body, "Subject: %d\r\n", &i); err != nil || body != crashBody(i) {
			return 0, false
		}
		return i, true
	}
	for _, box := range crashBoxes {
		local, domain, _ := strings.Cut(box, "@")
		dir := filepath.Join(crashMail, domain, local, "new")
		ents, _ := fsys.ReadDir(dir)
		for _, e := range ents {
			data, err := fsys.ReadFile(filepath.Join(dir, e.Name()))
			rest, ok := strings.CutPrefix(string(data), "Return-Path: <"+crashFrom+">\r\n")
			i, whole := index(rest)
			if err != nil || !ok || !whole {
				fail("%s/%s is not a whole message (%d bytes, %v)", box, e.Name(), len(data), err)
				continue
			}
			add(i, box)
		}
	}
	for _, s := range q.List() {
		data, err := fsys.ReadFile(filepath.Join(crashQueue, "msg", s.ID))
		i, whole := index(string(data))
		if err != nil || !whole {
			fail("queued %s is not a whole message (%d bytes, %v)", s.ID, len(data), err)
			continue
		}
		for _, rs := range s.Recipients {
			add(i, rs.Addr)
			if strings.HasSuffix(rs.Addr, "@example.com") {
				tally.viaQueue++
			}
		}
	}
	for i := range fanWriters * fanPerWriter {
		_, acked := r.acked[i]
		if acked {
			tally.acked++
		} else if len(copies[i]) > 0 {
			tally.unackedVisible++
		}
		for _, a := range crashRcpts(i) {
			n := copies[i][a]
			switch {
			case acked && n == 0:
				tally.lost++
				fail("acknowledged message %d: no copy for %s", i, a)
			case acked && n > 1:
				tally.duplicated++
				fail("message %d (acknowledged %v): %d copies for %s", i, acked, n, a)
			}
		}
		for a := range copies[i] {
			if !strings.Contains(strings.Join(crashRcpts(i), " "), a) {
				fail("message %d: a copy for %s, not a recipient", i, a)
			}
		}
	}
}

// TestFanOutPowerLoss crashes concurrent fan-outs at every operation
// boundary (strict, and two random write-backs each) and at random points,
// in each Maildir mode: per-file, syncfs, and the journal (replayed on a
// new boot).
func TestFanOutPowerLoss(t *testing.T) {
	fanOutPowerLoss(t, false, maildir.SyncFile, maildir.SyncFileSystem, maildir.SyncJournal)
}

// TestFanOutPowerLossVerified is TestFanOutPowerLoss for mail under
// [verify], held until the end of DATA and then written with its
// Authentication-Results field into the Maildirs and the queue: what was
// acknowledged is never lost, never doubled, always whole and with the
// field on top.
func TestFanOutPowerLossVerified(t *testing.T) {
	fanOutPowerLoss(t, true, maildir.SyncFileSystem, maildir.SyncJournal)
}

func fanOutPowerLoss(t *testing.T, verify bool, modes ...maildir.Sync) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			var tally fanTally
			base := fanOutRun{verify: verify}
			fsys := crashfs.New(crashfs.Options{})
			crashSetup(t, fsys)
			start := fsys.Ops()
			base.run(fsys, mode)
			ops := fsys.Ops() - start
			if len(base.acked) != fanWriters*fanPerWriter {
				t.Fatalf("without a crash %d of %d messages were acknowledged", len(base.acked), fanWriters*fanPerWriter)
			}
			base.check(t, fsys.Crash(), mode, "after the whole run", &tally)
			step := int64(1)
			if testing.Short() {
				step = 5
			}
			for n := int64(0); n <= ops && !t.Failed(); n += step {
				r := fanOutRun{verify: verify}
				fsys := crashfs.New(crashfs.Options{})
				crashSetup(t, fsys)
				fsys.CrashAfter(n)
				r.run(fsys, mode)
				r.check(t, fsys.Crash(), mode, fmt.Sprintf("crash after %d of %d ops, strict", n, ops), &tally)
				for s := range uint64(2) {
					seed := uint64(n)*2 + s
					r.check(t, fsys.CrashRandom(seed), mode, fmt.Sprintf("crash after %d of %d ops, random write-back %d", n, ops, seed), &tally)
				}
			}
			rng := rand.New(rand.NewPCG(7, uint64(mode)))
			deadline := time.Now().Add(2 * time.Second)
			for k := 0; k < 200 && time.Now().Before(deadline) && !t.Failed(); k++ {
				r := fanOutRun{verify: verify}
				fsys := crashfs.New(crashfs.Options{})
				crashSetup(t, fsys)
				n := rng.Int64N(ops + 1)
				fsys.CrashAfter(n)
				r.run(fsys, mode)
				seed := rng.Uint64()
				r.check(t, fsys.CrashRandom(seed), mode, fmt.Sprintf("random crash after %d ops, write-back %d", n, seed), &tally)
			}
			t.Logf("verify %v, %s: %d ops a run; %d simulated crashes, %d acknowledged messages checked (%d local copies taken over by the queue), "+
				"%d unacknowledged messages visible (whole), %d duplicated, %d lost",
				verify, mode, ops, tally.crashes, tally.acked, tally.viaQueue, tally.unackedVisible, tally.duplicated, tally.lost)
		})
	}
}
