package dkim

import "strings"

// Own splits prepended header fields (whole CRLF lines, as the queue keeps
// them in Meta.Prepend) into the keys of s that made the DKIM-Signature
// fields among them — a field whose d= and s= (RFC 6376 §3.5) name one of
// s's keys — and rest, every other field byte for byte (a signature by a
// key we no longer hold, or by someone else, is not ours to remove).
// Delivery uses it to sign again a message it converts to 7 bit, whose
// old signature the conversion breaks.
func (s *Signer) Own(fields string) (keys []Key, rest string) {
	if s == nil {
		return nil, fields
	}
	var kept strings.Builder
	for _, f := range splitFields(fields) {
		name, value, _ := strings.Cut(f, ":")
		k, ok := s.keyOf(name, value)
		if !ok {
			kept.WriteString(f)
			continue
		}
		if !hasKey(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys, kept.String()
}

// keyOf returns the key of s that made the header field name: value, when
// it is a DKIM-Signature.
func (s *Signer) keyOf(name, value string) (Key, bool) {
	if !strings.EqualFold(strings.TrimSpace(name), "DKIM-Signature") {
		return Key{}, false
	}
	tags := tagList(value)
	d := strings.ToLower(strings.TrimSuffix(tags["d"], "."))
	for _, k := range s.keys {
		if k.Domain == d && strings.EqualFold(k.Selector, tags["s"]) {
			return k, true
		}
	}
	return Key{}, false
}

func hasKey(keys []Key, k Key) bool {
	for _, o := range keys {
		if o.Domain == k.Domain && o.Selector == k.Selector {
			return true
		}
	}
	return false
}

// splitFields splits CRLF lines into header fields, each with its
// continuation lines (RFC 5322 §2.2.3) and its final CRLF. A final
// fragment without CRLF is kept as a field of its own.
func splitFields(fields string) []string {
	var fs []string
	for len(fields) > 0 {
		i := strings.Index(fields, "\r\n")
		line := fields
		if i >= 0 {
			line = fields[:i+2]
		}
		fields = fields[len(line):]
		if len(fs) > 0 && (line[0] == ' ' || line[0] == '\t') {
			fs[len(fs)-1] += line
			continue
		}
		fs = append(fs, line)
	}
	return fs
}

// tagList parses a DKIM tag=value list (RFC 6376 §3.2), whitespace (FWS)
// removed around names and values; the first of repeated tags wins.
func tagList(value string) map[string]string {
	tags := map[string]string{}
	for _, t := range strings.Split(value, ";") {
		name, v, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			continue
		}
		if _, seen := tags[name]; !seen {
			tags[name] = strings.Join(strings.Fields(v), "")
		}
	}
	return tags
}

// BeginWith starts signing a message with keys, whatever its From: the
// message was signed by them once (Own found their signatures) and is
// being signed again after a conversion that changed its bytes, not its
// author.
func (s *Signer) BeginWith(keys []Key) *Message {
	return &Message{s: s, fixed: keys}
}
