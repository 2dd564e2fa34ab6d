package config

import (
	"reflect"
	"strings"
)

// Diff lists the keys whose values differ between a and b, as dotted TOML
// names ("limits.shutdown_grace", "maildir.sync"), in the order of the
// schema. A table is walked key by key; an array of tables
// ([[listener]], [[domain]], …) is one key, named without brackets, which
// differs when any of its entries does. A reload uses it to apply what can
// change while running and to name what needs a restart.
func Diff(a, b Config) []string {
	var keys []string
	diffStruct(reflect.ValueOf(a), reflect.ValueOf(b), "", &keys)
	return keys
}

func diffStruct(a, b reflect.Value, prefix string, keys *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		fa, fb := a.Field(i), b.Field(i)
		if fa.Kind() == reflect.Struct && hasTOMLKeys(fa.Type()) {
			diffStruct(fa, fb, key+".", keys)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

// hasTOMLKeys reports whether t is a table of the schema rather than a
// value type that happens to be a struct.
func hasTOMLKeys(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") != "" {
			return true
		}
	}
	return false
}
