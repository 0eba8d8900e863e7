package transport

// DefaultBaudRate is the line speed [OpenSerial] uses when SerialConfig
// leaves it zero.
const DefaultBaudRate = 115200

// SerialConfig configures a serial port opened by [OpenSerial]. The zero
// value (and a nil *SerialConfig) means 115200 baud.
type SerialConfig struct {
	// BaudRate is the line speed in bits per second, one of the standard
	// rates from 50 to 4,000,000 (9600, 19200, 38400, 57600, 115200,
	// 230400, 460800, 921600, ...). Zero means DefaultBaudRate.
	BaudRate int
}

// DialSerial opens the serial port at path with [OpenSerial] and returns a
// stream Conn over it ([NewStreamConn]; a nil opts means SDA serial
// framing). The Conn owns the port and closes it on Close.
func DialSerial(path string, cfg *SerialConfig, opts *Options) (Conn, error) {
	f, err := OpenSerial(path, cfg)
	if err != nil {
		return nil, err
	}
	c, err := NewStreamConn(f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}
