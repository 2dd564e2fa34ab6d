package queue

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecover writes the spool by hand in each state a crash can leave it
// in and checks what Open keeps and removes.
func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir, id string) // the spool holds one committed message id
		wantIDs   bool                               // id survives
		wantFiles []string                           // every file left, relative to dir
	}{
		{name: "committed", wantIDs: true, setup: func(t *testing.T, dir, id string) {},
			wantFiles: []string{"env/ID.json", "msg/ID"}},
		{name: "crash while writing the message", setup: func(t *testing.T, dir, id string) {
			rename(t, dir, "msg/ID", "tmp/ID", id)
			remove(t, dir, "env/ID.json", id)
		}},
		{name: "crash after msg rename, before env", setup: func(t *testing.T, dir, id string) {
			remove(t, dir, "env/ID.json", id)
		}},
		{name: "crash while writing the envelope", setup: func(t *testing.T, dir, id string) {
			rename(t, dir, "env/ID.json", "tmp/ID.env", id)
		}},
		{name: "torn envelope in tmp next to a committed one", wantIDs: true, setup: func(t *testing.T, dir, id string) {
			write(t, dir, "tmp/ID.env", `{"v":1,"id":"tor`, id)
		}, wantFiles: []string{"env/ID.json", "msg/ID"}},
		{name: "envelope without message", setup: func(t *testing.T, dir, id string) {
			remove(t, dir, "msg/ID", id)
		}},
		{name: "unreadable envelope is set aside", setup: func(t *testing.T, dir, id string) {
			write(t, dir, "env/ID.json", "{not json", id)
		}, wantFiles: []string{"corrupt/ID", "corrupt/ID.json"}},
		{name: "envelope of another message is set aside", setup: func(t *testing.T, dir, id string) {
			data, _ := os.ReadFile(filepath.Join(dir, "env", id+".json"))
			remove(t, dir, "env/ID.json", id)
			other := "0123456789abcdef01234567"
			os.WriteFile(filepath.Join(dir, "env", other+".json"), data, 0o600)
			rename(t, dir, "msg/ID", "msg/"+other, id)
		}, wantFiles: []string{"corrupt/0123456789abcdef01234567", "corrupt/0123456789abcdef01234567.json"}},
		{name: "all recipients final but not removed", setup: func(t *testing.T, dir, id string) {
			write(t, dir, "env/ID.json", `{"v":1,"id":"ID","from":"a@example.org","rcpts":[
				{"addr":"b@example.net","domain":"example.net","state":"delivered"},
				{"addr":"c@example.net","domain":"example.net","state":"failed","notified":true}]}`, id)
		}},
		{name: "failed but not yet bounced is kept", wantIDs: true, setup: func(t *testing.T, dir, id string) {
			write(t, dir, "env/ID.json", `{"v":1,"id":"ID","from":"a@example.org","rcpts":[
				{"addr":"c@example.net","state":"failed"}]}`, id)
		}, wantFiles: []string{"env/ID.json", "msg/ID"}},
		{name: "strangers ignored", wantIDs: true, setup: func(t *testing.T, dir, id string) {
			write(t, dir, "env/README", "x", id)
			write(t, dir, "msg/..hidden", "x", id)
		}, wantFiles: []string{"env/ID.json", "env/README", "msg/..hidden", "msg/ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := open(t, &recorder{}, nil)
			id := enqueue(t, e.q, "a@example.org", "b@example.net")
			e.q.Close()
			tt.setup(t, e.dir, id)
			q, err := Open(Options{Dir: e.dir, Courier: &recorder{}, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			list := q.List()
			if got := len(list) == 1 && list[0].ID == id; got != tt.wantIDs || len(list) > 1 {
				t.Errorf("after recovery the queue holds %+v", list)
			}
			var want []string
			for _, f := range tt.wantFiles {
				want = append(want, filepath.FromSlash(replaceID(f, id)))
			}
			if got := allFiles(t, e.dir); !slices.Equal(got, want) {
				t.Errorf("files after recovery:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func replaceID(p, id string) string {
	out := ""
	for i := 0; i < len(p); i++ {
		if i+2 <= len(p) && p[i:i+2] == "ID" {
			out += id
			i++
			continue
		}
		out += p[i : i+1]
	}
	return out
}

func rename(t *testing.T, dir, from, to, id string) {
	t.Helper()
	if err := os.Rename(filepath.Join(dir, replaceID(from, id)), filepath.Join(dir, replaceID(to, id))); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, p, id string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, replaceID(p, id))); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, p, content, id string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, replaceID(p, id)), []byte(replaceID(content, id)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// allFiles lists the regular files under dir, sorted.
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == journalDir {
			return filepath.SkipDir // the journal's own files (journal_test.go)
		}
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
