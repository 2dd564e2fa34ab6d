package dkim

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"
)

// headerEnd returns the length of the header section of msg, through the
// empty line that ends it (RFC 5322 §2.1), or -1 while it has not ended.
// A message that starts with the empty line has an empty header. The
// search starts at from (the caller has searched the bytes before).
func headerEnd(msg []byte, from int) int {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(msg[from:], []byte("\r\n\r\n")); i >= 0 {
		return from + i + 4
	}
	return -1
}

// field is one header field: its name and its value, unfolded (RFC 5322
// §2.2.3), without the CRLF.
type field struct {
	name, value string
}

// parseHeader splits a header section (CRLF lines, as the server's strict
// reader passes them) into fields. A line that is neither a continuation
// nor "name:" ends the parse: what follows is not a header the signer
// picks fields from (the go-msgauth signer still hashes the message as
// written).
func parseHeader(h []byte) []field {
	var fs []field
	for _, line := range strings.Split(string(h), "\r\n") {
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fs) == 0 {
				break
			}
			fs[len(fs)-1].value += line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		// RFC 5322 §3.6.8: field-name is printable ASCII but ':', and no space.
		if !ok || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) {
			break
		}
		fs = append(fs, field{name: name, value: value})
	}
	return fs
}

// Errors fromDomain gives for a message it cannot choose a key for.
var (
	errNoFrom    = errors.New("no From header field")
	errManyFrom  = errors.New("more than one From header field")
	errBadFrom   = errors.New("From header field is not an address list")
	errMixedFrom = errors.New("From header field names more than one domain")
)

// fromDomain is the domain of the message's author, lower case: the
// domain of the From field's addresses (RFC 5322 §3.6.2), the one a
// signature is chosen for and DMARC aligns with (RFC 7489 §3.1). It needs
// exactly one From field (RFC 5322 §3.6 allows one) whose mailboxes share
// one domain.
func fromDomain(fs []field) (string, error) {
	var from *field
	for i := range fs {
		if strings.EqualFold(fs[i].name, "From") {
			if from != nil {
				return "", errManyFrom
			}
			from = &fs[i]
		}
	}
	if from == nil {
		return "", errNoFrom
	}
	// Encoded words in display names are decoded in any charset as bytes:
	// only the addresses matter here.
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
	}}
	list, err := p.ParseList(from.value)
	if err != nil || len(list) == 0 {
		return "", errBadFrom
	}
	domain := ""
	for _, a := range list {
		at := strings.LastIndexByte(a.Address, '@')
		if at < 0 {
			return "", errBadFrom
		}
		d := strings.ToLower(strings.TrimSuffix(a.Address[at+1:], "."))
		if domain != "" && d != domain {
			return "", errMixedFrom
		}
		domain = d
	}
	return domain, nil
}
