//go:build !race

package interop

// raceEnabled tells the harness to build the server with -race too.
const raceEnabled = false
