package queue

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// crashDirEnv names the spool a re-executed test binary commits into.
const crashDirEnv = "SMTPKIT_QUEUE_CRASH_DIR"

// crashBody is the deterministic content of crash test message i.
func crashBody(i int) string {
	return fmt.Sprintf("Subject: %d\r\n\r\n", i) + strings.Repeat(fmt.Sprintf("line of message %d\r\n", i), 200+i%50)
}

// TestCrashChild is the child of TestKill9: it commits messages as fast as
// it can and prints each id once Commit has returned (the moment a server
// would say 250). It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9 only")
	}
	q, err := Open(Options{Dir: dir, Courier: &recorder{}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range 10000 {
		w, err := q.Begin(envelopeOf("a@example.org", []string{fmt.Sprintf("r%d@example.net", i)}, Meta{}))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		w.Write([]byte(crashBody(i)))
		id, err := w.Commit()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("ok %s %d\n", id, i)
	}
	os.Exit(0)
}

// TestKill9 SIGKILLs a process that is committing messages at a random
// point, reopens its spool and checks that every acknowledged message is
// there exactly once, intact, and that nothing half-written is visible.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 5 + rand.IntN(60)
		acked := map[string]int{}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ok" {
				t.Fatalf("child: %s", sc.Text())
			}
			i, _ := strconv.Atoi(f[2])
			acked[f[1]] = i
			if len(acked) == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		// Lines the child printed before it died are acknowledgements too.
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ok" {
				i, _ := strconv.Atoi(f[2])
				acked[f[1]] = i
			}
		}
		cmd.Wait()
		if len(acked) < killAfter {
			t.Fatalf("round %d: child stopped after %d messages", round, len(acked))
		}
		checkAfterCrash(t, dir, acked)
	}
}

func checkAfterCrash(t *testing.T, dir string, acked map[string]int) {
	t.Helper()
	q, err := Open(Options{Dir: dir, Courier: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	list := q.List()
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s.ID] {
			t.Fatalf("%s listed twice", s.ID)
		}
		seen[s.ID] = true
		var i int
		if _, err := fmt.Sscanf(s.Recipients[0].Addr, "r%d@example.net", &i); err != nil || len(s.Recipients) != 1 {
			t.Fatalf("recipients %+v", s.Recipients)
		}
		if n, ok := acked[s.ID]; ok && n != i {
			t.Fatalf("%s is message %d, acknowledged as %d", s.ID, i, n)
		}
		data, err := os.ReadFile(filepath.Join(dir, "msg", s.ID))
		if err != nil || string(data) != crashBody(i) || s.Size != int64(len(data)) {
			t.Fatalf("message %s (%d) damaged: %v, %d bytes, size %d", s.ID, i, err, len(data), s.Size)
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged message %s lost", id)
		}
	}
	// At most one message beyond the acknowledged ones: the one whose
	// Commit had passed its commit point when the kill came.
	if extra := len(list) - len(acked); extra > 1 {
		t.Errorf("%d unacknowledged messages survived", extra)
	}
	for _, sub := range []string{"tmp"} {
		if left, _ := os.ReadDir(filepath.Join(dir, sub)); len(left) != 0 {
			t.Errorf("%s/ not cleaned: %v", sub, left)
		}
	}
	envs, _ := os.ReadDir(filepath.Join(dir, "env"))
	msgs, _ := os.ReadDir(filepath.Join(dir, "msg"))
	if len(envs) != len(list) || len(msgs) != len(list) {
		t.Errorf("%d env and %d msg files for %d messages", len(envs), len(msgs), len(list))
	}
}
