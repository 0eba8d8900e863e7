package token

import "testing"

// TestStatusString: every status has the name docs/PROTOCOL.md gives it,
// and an unknown number is shown as a number.
func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{
		StatusSuccess:           "success",
		StatusGeneralError:      "error",
		StatusInvalidRequest:    "invalid request",
		StatusInternalError:     "device internal error",
		StatusVerificationError: "verification error",
		StatusAccessDenied:      "access denied",
		StatusResponseTooSmall:  "response buffer too small",
		StatusNotInitialized:    "not initialized",
		StatusBusy:              "busy",
		StatusOperationFailed:   "operation execution error",
		9:                       "status 9",
	} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint32(s), got, want)
		}
	}
	if StatusBusy != 8 || StatusOperationFailed != 0x0FFFFFFF {
		t.Fatal("the wire numbers changed")
	}
}
