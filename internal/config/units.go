package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes. In TOML it is an integer (bytes) or a string
// with a unit: decimal B, KB, MB, GB, TB (powers of 1000) or binary KiB,
// MiB, GiB, TiB (powers of 1024), e.g. "50MiB", "10MB", "512KiB", "1024".
type ByteSize int64

// Byte size units.
const (
	KB  ByteSize = 1000
	MB           = 1000 * KB
	GB           = 1000 * MB
	TB           = 1000 * GB
	KiB ByteSize = 1024
	MiB          = 1024 * KiB
	GiB          = 1024 * MiB
	TiB          = 1024 * GiB
)

var sizeUnits = []struct {
	name string
	n    ByteSize
}{ // largest first; String prefers binary units.
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", 1},
}

// ParseByteSize parses "50MiB", "10MB", "512 KiB", "1024" or "1024B".
// Units are case-sensitive (MB is not Mb); the number is a non-negative integer.
func ParseByteSize(s string) (ByteSize, error) {
	num, unit := splitNumber(strings.TrimSpace(s))
	if num == "" {
		return 0, fmt.Errorf("size %q: want an integer with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: number out of range", s)
	}
	unit = strings.TrimSpace(unit)
	mult := ByteSize(1)
	if unit != "" {
		mult = 0
		for _, u := range sizeUnits {
			if u.name == unit {
				mult = u.n
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
		}
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return ByteSize(n) * mult, nil
}

// splitNumber splits s into its leading ASCII digits and the rest.
func splitNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// String formats b with the largest unit that divides it exactly,
// preferring binary units: 50MiB, 10MB, 1000001 (no unit for plain bytes).
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, u := range sizeUnits {
		if u.n > 1 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalText implements encoding.TextUnmarshaler (used by the TOML decoder).
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// Duration is a time.Duration written like "30s", "5m", "4h", "5d" or
// "1h30m". Units: d (24h), h, m, s, ms, us (or µs), ns; each component is a
// non-negative integer. A bare "0" is allowed; other numbers need a unit.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var durationUnits = []struct {
	name string
	n    time.Duration
}{ // largest first, the order String emits them in.
	{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
	{"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond},
}

var errDurationRange = errors.New("out of range")

// ParseDuration parses a Duration; see the type's documentation.
func ParseDuration(s string) (Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("duration %q: empty", orig)
	}
	var total time.Duration
	for s != "" {
		num, rest := splitNumber(s)
		if num == "" {
			return 0, fmt.Errorf("duration %q: want components like 5d, 4h, 30m, 10s, 500ms", orig)
		}
		unit, after := durationUnit(rest)
		if unit == 0 {
			return 0, fmt.Errorf("duration %q: missing or unknown unit after %s (use d, h, m, s, ms, us, ns)", orig, num)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && n > (math.MaxInt64-int64(total))/int64(unit) {
			err = errDurationRange
		}
		if err != nil {
			return 0, fmt.Errorf("duration %q: too large", orig)
		}
		total += time.Duration(n) * unit
		s = after
	}
	return Duration(total), nil
}

// durationUnit reads the unit at the start of s and returns its length in
// nanoseconds (0 when there is none) and what follows it.
func durationUnit(s string) (time.Duration, string) {
	switch {
	case strings.HasPrefix(s, "ms"):
		return time.Millisecond, s[2:]
	case strings.HasPrefix(s, "us"):
		return time.Microsecond, s[2:]
	case strings.HasPrefix(s, "µs"):
		return time.Microsecond, s[len("µs"):]
	case strings.HasPrefix(s, "ns"):
		return time.Nanosecond, s[2:]
	}
	if s == "" {
		return 0, s
	}
	switch s[0] {
	case 'd':
		return 24 * time.Hour, s[1:]
	case 'h':
		return time.Hour, s[1:]
	case 'm':
		return time.Minute, s[1:]
	case 's':
		return time.Second, s[1:]
	}
	return 0, s
}

// String formats d in the form ParseDuration reads: "5d", "1h30m", "30s",
// "0". Negative durations (which validation rejects) get a leading "-".
func (d Duration) String() string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	v := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		v = -v
	}
	for _, u := range durationUnits {
		if q := v / uint64(u.n); q > 0 {
			b.WriteString(strconv.FormatUint(q, 10))
			b.WriteString(u.name)
			v -= q * uint64(u.n)
		}
	}
	return b.String()
}

// UnmarshalText implements encoding.TextUnmarshaler (used by the TOML decoder).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
