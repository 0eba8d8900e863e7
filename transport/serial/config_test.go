package serial

import (
	"errors"
	"testing"

	"github.com/securedeviceaccess/sda/transport"
)

// TestConfigRate checks the rates Config accepts, on every platform alike:
// zero means DefaultBaudRate, the standard rates are kept, others are
// refused with transport.ErrInvalidOptions.
func TestConfigRate(t *testing.T) {
	for _, tt := range []struct {
		cfg  *Config
		want int
	}{{nil, DefaultBaudRate}, {&Config{}, 115200}, {&Config{BaudRate: 50}, 50}, {&Config{BaudRate: 4000000}, 4000000}} {
		if got, err := tt.cfg.rate(); got != tt.want || err != nil {
			t.Errorf("rate of %+v: %d, %v; want %d", tt.cfg, got, err, tt.want)
		}
	}
	for _, rate := range baudRates {
		if got, err := (&Config{BaudRate: rate}).rate(); got != rate || err != nil {
			t.Errorf("rate %d: %d, %v", rate, got, err)
		}
	}
	for _, rate := range []int{-1, 1, 49, 12345, 115201, 4000001} {
		if got, err := (&Config{BaudRate: rate}).rate(); !errors.Is(err, transport.ErrInvalidOptions) {
			t.Errorf("rate %d: %d, %v; want ErrInvalidOptions", rate, got, err)
		}
	}
}
