package dane

import "smtpkit/internal/tlsrpt"

// Error is why a presented chain did not pass DANE verification. It
// implements tlsrpt.Failure, so that delivery counts it under its RFC 8460
// §4.3 result type without knowing DANE.
type Error struct {
	Result tlsrpt.ResultType
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "dane: " + e.Reason }

// ResultType implements tlsrpt.Failure.
func (e *Error) ResultType() tlsrpt.ResultType { return e.Result }

var _ tlsrpt.Failure = (*Error)(nil)
