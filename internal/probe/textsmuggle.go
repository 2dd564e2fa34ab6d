package probe

import (
	"bufio"
	"fmt"
	"io"
)

// WriteSmuggleText writes the --smuggling reports for people: per port,
// one row per ending and the injection test, the transcript when kept,
// and a summary line.
func WriteSmuggleText(w io.Writer, reps []SmuggleReport, color bool) error {
	t := textWriter{w: bufio.NewWriter(w), color: color}
	vulnerable := 0
	for i, rep := range reps {
		if i > 0 {
			t.w.WriteString("\n")
		}
		status := t.paint(ansiGreen, "safe")
		switch {
		case rep.Vulnerable:
			status = t.paint(ansiRed, "VULNERABLE")
			vulnerable++
		case !rep.tested():
			status = t.paint(ansiRed, "not tested")
		}
		fmt.Fprintf(t.w, "%s  smuggling self-test: %s\n", t.paint(ansiBold, rep.Address), status)
		t.row("mode", rep.Mode)
		t.row("rcpt", rep.Rcpt)
		for _, e := range rep.Endings {
			t.row(e.Ending, t.outcome(e.Outcome)+reply(e.Reply)+": "+e.Detail)
		}
		if in := rep.Injection; in != nil {
			t.row("STARTTLS inject", t.outcome(in.Outcome)+": "+in.Detail)
		}
		if len(rep.Transcript) > 0 {
			t.w.WriteString("  transcript:\n")
			for _, l := range rep.Transcript {
				fmt.Fprintf(t.w, "    %s\n", l)
			}
		}
	}
	fmt.Fprintf(t.w, "\n%d port(s) tested for SMTP smuggling: %d vulnerable\n", len(reps), vulnerable)
	return t.w.Flush()
}

func reply(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func (t textWriter) outcome(o string) string {
	switch o {
	case SmuggleVulnerable:
		return t.paint(ansiRed, o)
	case SmuggleError:
		return t.paint(ansiYellow, o)
	}
	return t.paint(ansiGreen, o)
}

// tested reports whether at least one attempt was made to the end.
func (rep SmuggleReport) tested() bool {
	for _, e := range rep.Endings {
		if e.Outcome != SmuggleError {
			return true
		}
	}
	return false
}

// SmuggleExit is the exit status of `smtpkit probe --smuggling`:
// ExitVulnerable when a port is vulnerable, else ExitFailure when an
// attempt could not be made, else ExitOK.
func SmuggleExit(reps []SmuggleReport) int {
	code := ExitOK
	for _, rep := range reps {
		if rep.Vulnerable {
			return ExitVulnerable
		}
		for _, e := range rep.Endings {
			if e.Outcome == SmuggleError {
				code = ExitFailure
			}
		}
		if rep.Injection != nil && rep.Injection.Outcome == SmuggleError {
			code = ExitFailure
		}
	}
	return code
}
