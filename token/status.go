package token

import "fmt"

// Status is the result number a device puts in every response (response
// key 2, docs/PROTOCOL.md "Numbered keys"). The device package answers
// with it and the client package reports it ([client.StatusError]); the
// numbers are those of SDA v1, and StatusBusy is a v2 addition.
type Status uint32

// The statuses of docs/PROTOCOL.md. They are never renumbered.
const (
	StatusSuccess           Status = 0
	StatusGeneralError      Status = 1 // "error": no more specific status applies
	StatusInvalidRequest    Status = 2 // the request is malformed
	StatusInternalError     Status = 3
	StatusVerificationError Status = 4 // signature, audience, time, nonce, unknown issuer
	StatusAccessDenied      Status = 5 // the operation is not in the token's scope
	StatusResponseTooSmall  Status = 6
	StatusNotInitialized    Status = 7
	StatusBusy              Status = 8          // v2: the device refuses new nonces for a while
	StatusOperationFailed   Status = 0x0FFFFFFF // the operation ran and failed
)

// String names the status as docs/PROTOCOL.md does.
func (s Status) String() string {
	switch s {
	case StatusSuccess:
		return "success"
	case StatusGeneralError:
		return "error"
	case StatusInvalidRequest:
		return "invalid request"
	case StatusInternalError:
		return "device internal error"
	case StatusVerificationError:
		return "verification error"
	case StatusAccessDenied:
		return "access denied"
	case StatusResponseTooSmall:
		return "response buffer too small"
	case StatusNotInitialized:
		return "not initialized"
	case StatusOperationFailed:
		return "operation execution error"
	case StatusBusy:
		return "busy"
	}
	return fmt.Sprintf("status %d", uint32(s))
}
