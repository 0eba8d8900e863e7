package serial

import (
	"fmt"
	"slices"

	"github.com/securedeviceaccess/sda/transport"
)

// DefaultBaudRate is the line speed [Open] and [Dial] use when Config
// leaves it zero.
const DefaultBaudRate = 115200

// baudRates are the line speeds Config accepts, on every platform: the
// standard rates that Linux has termios codes for. macOS and Windows take
// any rate the driver supports; the list keeps a Config that works on one
// platform working on the others.
var baudRates = []int{
	50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
	19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
	1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
}

// Config configures a serial port opened by [Open] or [Dial]. The line is
// always 8 data bits, no parity, one stop bit (8N1), without flow control;
// the zero value (and a nil *Config) means 115200 baud.
type Config struct {
	// BaudRate is the line speed in bits per second, one of the standard
	// rates from 50 to 4,000,000 (9600, 19200, 38400, 57600, 115200,
	// 230400, 460800, 921600, ...). Zero means DefaultBaudRate. Whether
	// the port's hardware supports the rate is up to its driver.
	BaudRate int
}

// rate returns the line speed c asks for, or an error matching
// transport.ErrInvalidOptions when it is not a standard rate.
func (c *Config) rate() (int, error) {
	rate := DefaultBaudRate
	if c != nil && c.BaudRate != 0 {
		rate = c.BaudRate
	}
	if !slices.Contains(baudRates, rate) {
		return 0, fmt.Errorf("%w: unsupported baud rate %d", transport.ErrInvalidOptions, rate)
	}
	return rate, nil
}
