// Package errcode is Berth's single error-code enum. Every package classifies
// its errors with these codes once, and the HTTP layer maps each code to a
// status and a spec error in exactly one table.
package errcode

import (
	"context"
	"errors"
	"fmt"
)

// Code classifies an error.
type Code int

// The error codes. The zero value is Unknown.
const (
	Unknown Code = iota
	OK
	NotFound
	AlreadyExists
	InvalidArgument
	Unauthenticated
	PermissionDenied
	FailedPrecondition
	ResourceExhausted
	Unimplemented
	Internal
	Canceled
	DeadlineExceeded
	// DataLoss reports stored data that failed an integrity check.
	DataLoss
)

var names = [...]string{
	Unknown:            "Unknown",
	OK:                 "OK",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	InvalidArgument:    "InvalidArgument",
	Unauthenticated:    "Unauthenticated",
	PermissionDenied:   "PermissionDenied",
	FailedPrecondition: "FailedPrecondition",
	ResourceExhausted:  "ResourceExhausted",
	Unimplemented:      "Unimplemented",
	Internal:           "Internal",
	Canceled:           "Canceled",
	DeadlineExceeded:   "DeadlineExceeded",
	DataLoss:           "DataLoss",
}

// String returns the code's name.
func (c Code) String() string {
	if c >= 0 && int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is an error with a code. Msg is the complete, already prefixed
// message; Err, when set, is the cause.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Newf returns an error with code c and a formatted message, wrapping cause
// (which may be nil).
func Newf(c Code, cause error, format string, args ...any) error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// Coder is implemented by errors that carry their own code.
type Coder interface{ ErrorCode() Code }

// Of returns the code of the first error in err's chain that carries one:
// an *Error, or an error implementing Coder. Context cancellation and
// deadline errors are Canceled and DeadlineExceeded. It returns OK for nil
// and Unknown when no error in the chain has a code.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	if c := of(err); c != Unknown {
		return c
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Unknown
}

func of(err error) Code {
	for e := err; e != nil; {
		switch x := e.(type) {
		case *Error:
			return x.Code
		case Coder:
			return x.ErrorCode()
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range m.Unwrap() {
				if c := of(inner); c != Unknown {
					return c
				}
			}
			return Unknown
		}
		e = errors.Unwrap(e)
	}
	return Unknown
}

// Is reports whether err's code is c.
func Is(err error, c Code) bool { return Of(err) == c }
