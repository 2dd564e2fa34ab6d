package sasl

import (
	"bytes"
	"errors"
	"testing"
)

var (
	cbA = ChannelBinding{Type: BindingTLSExporter, Data: bytes.Repeat([]byte{0xaa}, 32)}
	cbB = ChannelBinding{Type: BindingTLSExporter, Data: bytes.Repeat([]byte{0xbb}, 32)}
	cbU = ChannelBinding{Type: BindingTLSUnique, Data: bytes.Repeat([]byte{0x11}, 12)}
)

// TestScramPlus covers RFC 5802 §6: the client's channel binding must
// equal the server's, the type must be one the connection offers, and the
// "y" flag is a downgrade where the server offers -PLUS.
func TestScramPlus(t *testing.T) {
	tests := []struct {
		name       string
		mech       string           // server mechanism
		server     []ChannelBinding // server's bindings of "the" connection
		client     Client
		wantErr    error // nil: success
		wantAlsoIs error
	}{
		{"tls-exporter matches", MechScramSHA256Plus, []ChannelBinding{cbA},
			NewScramSHA256PlusClient("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbA}}), nil, nil},
		{"tls-unique matches", MechScramSHA256Plus, []ChannelBinding{cbU, cbA},
			NewScramSHA256PlusClient("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbU}}), nil, nil},
		{"man in the middle: data differ", MechScramSHA256Plus, []ChannelBinding{cbA},
			NewScramSHA256PlusClient("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbB}}), ErrInvalidCredentials, ErrChannelBinding},
		{"type not offered", MechScramSHA256Plus, []ChannelBinding{cbA},
			NewScramSHA256PlusClient("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbU}}), ErrInvalidCredentials, ErrChannelBinding},
		{"y flag where -PLUS is offered: downgrade", MechScramSHA256, []ChannelBinding{cbA},
			NewScramSHA256ClientOptions("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbA}}), ErrInvalidCredentials, ErrChannelBinding},
		{"y flag where -PLUS is not offered", MechScramSHA256, nil,
			NewScramSHA256ClientOptions("alice@example.org", "s3cret", Options{ChannelBindings: []ChannelBinding{cbA}}), nil, nil},
		{"n flag inside TLS", MechScramSHA256, []ChannelBinding{cbA},
			NewScramSHA256Client("alice@example.org", "s3cret"), nil, nil},
		{"-PLUS with wrong password", MechScramSHA256Plus, []ChannelBinding{cbA},
			NewScramSHA256PlusClient("alice@example.org", "nope", Options{ChannelBindings: []ChannelBinding{cbA}}), ErrInvalidCredentials, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewServerOptions(tt.mech, testCreds(), Options{ChannelBindings: tt.server})
			if err != nil {
				t.Fatal(err)
			}
			err = drive(t, tt.client, srv)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("exchange failed: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantAlsoIs != nil && !errors.Is(err, tt.wantAlsoIs):
				t.Fatalf("err = %v, want it to be %v too", err, tt.wantAlsoIs)
			}
			if tt.wantErr == nil && srv.Username() != "alice@example.org" {
				t.Errorf("Username = %q", srv.Username())
			}
		})
	}
}

// TestScramPlusGS2 feeds hand-made client-first messages: the flag must fit
// the mechanism.
func TestScramPlusGS2(t *testing.T) {
	tests := []struct {
		name    string
		mech    string
		server  []ChannelBinding
		first   string
		wantErr error
	}{
		{"-PLUS with n", MechScramSHA256Plus, []ChannelBinding{cbA}, "n,,n=alice@example.org,r=abc", ErrMalformed},
		{"-PLUS with y", MechScramSHA256Plus, []ChannelBinding{cbA}, "y,,n=alice@example.org,r=abc", ErrMalformed},
		{"p= without -PLUS", MechScramSHA256, []ChannelBinding{cbA}, "p=tls-exporter,,n=alice@example.org,r=abc", ErrMalformed},
		{"bad cb-name", MechScramSHA256Plus, []ChannelBinding{cbA}, "p=tls_exporter,,n=alice@example.org,r=abc", ErrMalformed},
		{"empty cb-name", MechScramSHA256Plus, []ChannelBinding{cbA}, "p=,,n=alice@example.org,r=abc", ErrMalformed},
		{"unknown type", MechScramSHA256Plus, []ChannelBinding{cbA}, "p=tls-server-end-point,,n=alice@example.org,r=abc", ErrChannelBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewServerOptions(tt.mech, testCreds(), Options{ChannelBindings: tt.server})
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := srv.Next(t.Context(), []byte(tt.first))
			if !done || !errors.Is(err, tt.wantErr) {
				t.Fatalf("done=%v err=%v, want %v", done, err, tt.wantErr)
			}
		})
	}
}

// TestScramPlusNeedsBinding: no -PLUS server and no -PLUS client exchange
// without a channel binding.
func TestScramPlusNeedsBinding(t *testing.T) {
	if _, err := NewServerOptions(MechScramSHA256Plus, testCreds(), Options{}); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Errorf("server without binding: %v", err)
	}
	if _, _, err := NewScramSHA256PlusClient("a", "b", Options{}).Start(); err == nil {
		t.Errorf("client without binding started")
	}
}
