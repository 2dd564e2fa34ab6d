package mtasts

import (
	"fmt"

	"smtpkit/internal/tlsrpt"
)

// Error is why a domain's policy could not be discovered, fetched or used.
// It implements tlsrpt.Failure: Result is one of the MTA-STS result types
// of RFC 8460 §4.3.2.2 (sts-policy-fetch-error, sts-policy-invalid,
// sts-webpki-invalid).
type Error struct {
	Domain string
	Result tlsrpt.ResultType
	Reason string // what went wrong, for logs and TLS-RPT additional-information
	Err    error  // the cause, if any
}

var _ tlsrpt.Failure = (*Error)(nil)

func (e *Error) Error() string {
	s := "mtasts: " + e.Domain + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// ResultType implements tlsrpt.Failure.
func (e *Error) ResultType() tlsrpt.ResultType { return e.Result }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func fetchError(domain string, err error, format string, args ...any) *Error {
	return &Error{Domain: domain, Result: tlsrpt.STSPolicyFetchError, Reason: fmt.Sprintf(format, args...), Err: err}
}

func invalidError(domain string, err error, format string, args ...any) *Error {
	return &Error{Domain: domain, Result: tlsrpt.STSPolicyInvalid, Reason: fmt.Sprintf(format, args...), Err: err}
}

func webPKIError(domain string, err error, format string, args ...any) *Error {
	return &Error{Domain: domain, Result: tlsrpt.STSWebPKIInvalid, Reason: fmt.Sprintf(format, args...), Err: err}
}
