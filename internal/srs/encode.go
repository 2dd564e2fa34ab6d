package srs

import (
	"encoding/base32"
	"time"
)

// hashLen is the length of the hash field: six base32 characters, 30 bits
// of HMAC-SHA256 (libsrs2's default is four base64 characters, 24 bits).
const hashLen = 6

// stampModulo: the timestamp is two base32 characters, 10 bits of days.
const stampModulo = 1024

// alphabet is RFC 4648 §6 base32, upper case; decoding also takes lower
// case.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

var hashEncoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

func encodeHash(sum []byte) string { return hashEncoding.EncodeToString(sum)[:hashLen] }

// base32Value is the value of one base32 character, any case, or -1.
func base32Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= '2' && c <= '7':
		return int(c-'2') + 26
	}
	return -1
}

// dayNumber is the day of t since the Unix epoch (UTC), modulo 1024.
func dayNumber(t time.Time) int { return int(t.Unix()/86400) % stampModulo }

// stamp is the timestamp field for t.
func stamp(t time.Time) string {
	d := dayNumber(t)
	return string([]byte{alphabet[d>>5], alphabet[d&31]})
}

// decodeStamp is the day number of a timestamp field.
func decodeStamp(s string) (int, bool) {
	if len(s) != 2 {
		return 0, false
	}
	hi, lo := base32Value(s[0]), base32Value(s[1])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return hi<<5 | lo, true
}
