package config

import (
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{"1024", 1024, false},
		{"0", 0, false},
		{"1024B", 1024, false},
		{"512KiB", 512 * 1024, false},
		{"50MiB", 50 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"10MB", 10_000_000, false},
		{"3KB", 3000, false},
		{"7GB", 7_000_000_000, false},
		{" 50 MiB ", 50 << 20, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"10Mb", 0, true},
		{"10mib", 0, true},
		{"1.5MiB", 0, true},
		{"-1", 0, true},
		{"10 MiB extra", 0, true},
		{"9223372036854775807", 9223372036854775807, false},
		{"9223372036854775808", 0, true},
		{"9000000TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1KB"}, {1024, "1KiB"}, {50 * MiB, "50MiB"},
		{10 * MB, "10MB"}, {GiB, "1GiB"}, {1536, "1536"}, {1001, "1001"}, {2048 * 1000, "2000KiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"5m", 5 * time.Minute, false},
		{"4h", 4 * time.Hour, false},
		{"5d", 5 * 24 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"1d12h", 36 * time.Hour, false},
		{"500ms", 500 * time.Millisecond, false},
		{"1m500ms", time.Minute + 500*time.Millisecond, false},
		{"3us", 3 * time.Microsecond, false},
		{"3µs", 3 * time.Microsecond, false},
		{"7ns", 7, false},
		{"0", 0, false},
		{"0s", 0, false},
		{"", 0, true},
		{"300", 0, true},
		{"5", 0, true},
		{"5x", 0, true},
		{"h", 0, true},
		{"-5m", 0, true},
		{"1.5h", 0, true},
		{"5m ", 5 * time.Minute, false},
		{"5 m", 0, true},
		{"106752d", 0, true},
		{"106751d", 106751 * 24 * time.Hour, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got.D() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got.D(), err, tt.want, tt.wantErr)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"}, {30 * time.Second, "30s"}, {5 * time.Minute, "5m"}, {4 * time.Hour, "4h"},
		{5 * 24 * time.Hour, "5d"}, {90 * time.Minute, "1h30m"}, {36 * time.Hour, "1d12h"},
		{1500 * time.Millisecond, "1s500ms"}, {time.Nanosecond, "1ns"}, {-time.Second, "-1s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.in).String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
