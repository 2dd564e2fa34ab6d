package sendlimit

import (
	"testing"
	"time"
)

// FuzzParse checks that no counts.json, however broken, panics the loader
// or leaves a store that panics, and that what loads stays sorted.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"accounts":{"alice@example.com":{"sent":[1796180400,1796180460],"rcpts":{"1f2e":1796180400}}}}`,
		`{"v":1,"accounts":{}}`,
		`{"v":2,"accounts":{}}`,
		`{"v":1,"accounts":{"a":{"sent":[3,2,1]}}}`,
		`{"v":1,"accounts":{"a":{"rcpts":{"zz":1}}}}`,
		`{"v":1,"accounts":{"a":{"rcpts":{"ffffffffffffffffff":1}}}}`,
		`[]`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &clock{t: time.Unix(1796180500, 0)}
		s, err := Open(Options{Limits: Limits{MessagesPerHour: 2, RecipientsPerDay: 2}, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.parse(data); err != nil {
			return
		}
		for name, a := range s.byName {
			for i := 1; i < len(a.sent); i++ {
				if a.sent[i] < a.sent[i-1] {
					t.Fatalf("%s: unsorted times loaded", name)
				}
			}
			s.Message(name)
			s.Recipient(name, "x@y.example")
		}
	})
}
