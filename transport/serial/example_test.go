package serial_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/transport/serial"
)

// A technician tool talking to a device on a USB serial adapter
// (/dev/ttyUSB0 on Linux, COM3 on Windows, /dev/cu.usbserial-1410 on
// macOS). The port is set to raw mode at 115200 baud; messages use the SDA
// serial framing. (Not run: it needs the device.)
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := serial.Dial(ctx, "/dev/ttyUSB0", &serial.Config{BaudRate: 115200}, nil)
	if err != nil {
		fmt.Println(err) // errors.Is(err, serial.ErrNotSerialPort) for a path that is not a serial port
		return
	}
	defer conn.Close()
	if err := conn.Send(ctx, []byte{0x81, 0x01}); err != nil { // [1]: a nonce request
		fmt.Println(err)
		return
	}
	resp, err := conn.Receive(ctx)
	fmt.Printf("%x %v\n", resp, err)
}

// Opening the port and framing it separately, for a device agent that
// serves the line with a message limit of its own. A baud rate that is not
// standard is refused before the port is opened.
func ExampleOpen() {
	port, err := serial.Open("/dev/ttyACM0", &serial.Config{BaudRate: 12345})
	fmt.Println(errors.Is(err, transport.ErrInvalidOptions))
	if err != nil {
		return
	}
	conn, err := transport.NewStreamConn(port, &transport.Options{MaxMessageSize: 2048})
	if err != nil {
		port.Close()
		return
	}
	defer conn.Close()
	// Output: true
}
