package sasl

import (
	"context"
	"errors"
	"testing"
)

// memCreds is an in-memory account store for tests.
type memCreds struct {
	passwords map[string]string
	keys      map[string]ScramKeys
	fail      error // returned by every lookup when set (a broken store)
}

func (m memCreds) CheckPassword(_ context.Context, username, password string) error {
	if m.fail != nil {
		return m.fail
	}
	if want, ok := m.passwords[username]; !ok || want != password {
		return ErrInvalidCredentials
	}
	return nil
}

func (m memCreds) ScramKeys(_ context.Context, username string) (ScramKeys, error) {
	if m.fail != nil {
		return ScramKeys{}, m.fail
	}
	k, ok := m.keys[username]
	if !ok {
		return ScramKeys{}, ErrInvalidCredentials
	}
	return k, nil
}

// testCreds knows "alice@example.org" with password "s3cret" (and SCRAM
// keys at the minimum iteration count, to keep tests fast) and "a,b=c" with
// password "pw", whose name needs saslname escaping.
func testCreds() memCreds {
	salt := []byte("0123456789abcdef")
	return memCreds{
		passwords: map[string]string{"alice@example.org": "s3cret", "a,b=c": "pw"},
		keys: map[string]ScramKeys{
			"alice@example.org": NewScramKeys("s3cret", salt, MinIterations),
			"a,b=c":             NewScramKeys("pw", salt, MinIterations),
		},
	}
}

var errStoreDown = errors.New("store down")

// exchange feeds responses to srv in order and returns the challenges it
// produced, whether it finished, and its final error. It fails the test if
// srv finishes before all responses were used.
func exchange(t *testing.T, srv Server, responses ...[]byte) (challenges [][]byte, done bool, err error) {
	t.Helper()
	for i, r := range responses {
		var c []byte
		c, done, err = srv.Next(context.Background(), r)
		if done {
			if i != len(responses)-1 {
				t.Fatalf("exchange finished after %d of %d responses: %v", i+1, len(responses), err)
			}
			return challenges, done, err
		}
		challenges = append(challenges, c)
	}
	return challenges, done, err
}

// drive runs client against srv until the server finishes.
func drive(t *testing.T, client Client, srv Server) error {
	t.Helper()
	_, resp, err := client.Start()
	if err != nil {
		return err
	}
	for i := 0; i < MaxSteps+1; i++ {
		challenge, done, err := srv.Next(context.Background(), resp)
		if done {
			return err
		}
		if resp, err = client.Next(challenge); err != nil {
			return err
		}
	}
	t.Fatal("exchange did not finish")
	return nil
}
