// Command smtpkit is a mail server and SMTP toolkit: one binary with
// subcommands (serve, user, config, send, sendmail, probe, queue, ...).
// Everything lives in internal/cli; this file only hands over.
//
// Installed (or symlinked) under the name "sendmail", it behaves as
// `smtpkit sendmail`, so /usr/sbin/sendmail can point at it.
package main

import (
	"os"
	"path/filepath"

	"smtpkit/internal/cli"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "sendmail" {
		args = append([]string{"sendmail"}, args...)
	}
	os.Exit(cli.Main(args, cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
