package sasl

import (
	"crypto/tls"
	"fmt"
)

// Channel binding types (RFC 5056, registered by IANA) for
// SCRAM-SHA-256-PLUS (RFC 5802 §6).
const (
	// BindingTLSExporter is RFC 9266's binding for TLS 1.3: 32 octets of
	// keying material exported with the label "EXPORTER-Channel-Binding"
	// and no context.
	BindingTLSExporter = "tls-exporter"
	// BindingTLSUnique is RFC 5929 §3's binding for TLS 1.2: the first
	// Finished message of the latest handshake. Undefined for TLS 1.3
	// (RFC 9266 §3) and unsafe after resumption without the extended
	// master secret (RFC 7627), where crypto/tls gives none.
	BindingTLSUnique = "tls-unique"
)

// exporterLabel and exporterLength are RFC 9266 §2's parameters.
const (
	exporterLabel  = "EXPORTER-Channel-Binding"
	exporterLength = 32
)

// ChannelBinding is one channel binding: its type name and the octets the
// connection gives for it.
type ChannelBinding struct {
	Type string
	Data []byte
}

// Bindings returns the channel bindings a TLS connection offers, the
// preferred first: tls-exporter for TLS 1.3 (RFC 9266 §3: the only one);
// for TLS 1.2 tls-unique, and tls-exporter too when the handshake used the
// extended master secret (RFC 9266 §3 allows it only then; crypto/tls
// refuses to export without it). Nil when there is none (then -PLUS must
// not be offered or used).
func Bindings(cs tls.ConnectionState) []ChannelBinding {
	if !cs.HandshakeComplete {
		return nil
	}
	var out []ChannelBinding
	switch {
	case cs.Version >= tls.VersionTLS13:
		if b, err := exporter(cs); err == nil {
			out = append(out, b)
		}
	case cs.Version == tls.VersionTLS12:
		if len(cs.TLSUnique) > 0 {
			out = append(out, ChannelBinding{Type: BindingTLSUnique, Data: append([]byte(nil), cs.TLSUnique...)})
		}
		if b, err := exporter(cs); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func exporter(cs tls.ConnectionState) (ChannelBinding, error) {
	data, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLength)
	if err != nil {
		return ChannelBinding{}, fmt.Errorf("sasl: tls-exporter: %w", err)
	}
	return ChannelBinding{Type: BindingTLSExporter, Data: data}, nil
}

// findBinding returns the binding of type name in list.
func findBinding(list []ChannelBinding, name string) (ChannelBinding, bool) {
	for _, b := range list {
		if b.Type == name {
			return b, true
		}
	}
	return ChannelBinding{}, false
}
