package console

import (
	"errors"
	"strconv"
)

// ErrNoAdminHandler reports a [New] without the administration API's handler.
var ErrNoAdminHandler = errors.New("console: no administration API handler")

// ErrInvalidOptions reports [Options] that cannot be used. Errors that
// match it are a *[PrefixError].
var ErrInvalidOptions = errors.New("console: invalid options")

// PrefixError reports an [Options].Prefix that does not start and end with
// a slash. It matches [ErrInvalidOptions].
type PrefixError struct {
	Prefix string
}

// Error names the prefix.
func (e *PrefixError) Error() string {
	return "console: invalid options: prefix " + strconv.Quote(e.Prefix) + " must start and end with /"
}

// Is makes the error match [ErrInvalidOptions].
func (e *PrefixError) Is(target error) bool { return target == ErrInvalidOptions }
