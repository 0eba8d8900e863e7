//go:build linux || windows || darwin || freebsd || openbsd

package serial

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	bugst "go.bug.st/serial"
)

// TestModeAt pins the settings handed to go.bug.st/serial on Windows,
// macOS and the BSDs for each rate Config accepts: 8 data bits, no parity,
// one stop bit, the rate, and the modem lines left to the driver
// (InitialStatusBits nil).
func TestModeAt(t *testing.T) {
	for _, rate := range baudRates {
		want := bugst.Mode{BaudRate: rate, DataBits: 8, Parity: bugst.NoParity, StopBits: bugst.OneStopBit}
		if m := modeAt(rate); *m != want {
			t.Errorf("rate %d: mode %+v, want %+v", rate, *m, want)
		}
	}
}

// TestPortError checks how the failures of go.bug.st/serial to open a port
// are reported: as an *os.PathError naming the port, matching the sentinel
// of their kind.
func TestPortError(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name   string
		code   bugst.PortErrorCode
		want   error
		unwant []error
	}{
		{"not found", bugst.PortNotFound, fs.ErrNotExist, []error{ErrNotSerialPort, ErrPortBusy}},
		{"permission", bugst.PermissionDenied, fs.ErrPermission, []error{ErrNotSerialPort, ErrPortBusy}},
		{"busy", bugst.PortBusy, ErrPortBusy, []error{ErrNotSerialPort, fs.ErrPermission}},
		{"not a port", bugst.InvalidSerialPort, ErrNotSerialPort, []error{ErrPortBusy, fs.ErrNotExist}},
		{"other", bugst.InvalidSpeed, cause, []error{ErrNotSerialPort, ErrPortBusy, fs.ErrNotExist}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := portError("COM7", tt.code, cause)
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Path != "COM7" {
				t.Fatalf("%v: want an *os.PathError for COM7", err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("%v: does not match %v", err, tt.want)
			}
			for _, u := range tt.unwant {
				if errors.Is(err, u) {
					t.Errorf("%v: matches %v", err, u)
				}
			}
		})
	}
}

// TestOpenError checks that openError finds the code of a *PortError and
// keeps other errors, such as an errno, as they are.
func TestOpenError(t *testing.T) {
	if err := openError("COM7", &bugst.PortError{}); !errors.Is(err, ErrPortBusy) { // the zero code is PortBusy
		t.Errorf("PortError: %v, want ErrPortBusy", err)
	}
	err := openError("/dev/cu.missing", syscall.ENOENT)
	var pe *os.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != "/dev/cu.missing" {
		t.Errorf("ENOENT: %v, want fs.ErrNotExist in an *os.PathError", err)
	}
}
