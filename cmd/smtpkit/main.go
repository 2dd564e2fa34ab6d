// Command smtpkit is a mail server and SMTP toolkit: one binary with
// subcommands (serve, user, config, send, sendmail, probe, queue, ...).
// Everything lives in internal/cli; this file only hands over.
package main

import (
	"os"

	"smtpkit/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
