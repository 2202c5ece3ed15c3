// Package snapdeck holds the product's nouns shared by every layer: users,
// hosted databases, snapshots, jobs, audit events, and the one error type.
// It imports nothing of ours, so the store, the domain packages and the web
// layer can all speak it.
package snapdeck

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The web layer maps each code to one HTTP status.
type Code string

// The error codes. Anything untyped counts as Internal.
const (
	Invalid      Code = "invalid"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	NotFound     Code = "not-found"
	Conflict     Code = "conflict"
	Busy         Code = "busy"
	TooMany      Code = "too-many-requests"
	TooLarge     Code = "too-large"
	Internal     Code = "internal"
)

// Error is the error type every domain and store call returns for expected
// failures. Message is safe to show to a user; Err is the cause, logged only.
type Error struct {
	Code    Code
	Message string
	Reason  string // machine-readable reason for the API, e.g. "db-not-found"
	Field   string // the input at fault, if any
	Err     error
}

// Error returns the message, with the cause for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an Invalid error about one input field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first Error in err's chain, or Internal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the safe message of the first Error in err's chain,
// or a plain sentence for anything untyped.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Something went wrong on our side. The details are in the server log."
}

// AsError returns the first Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
