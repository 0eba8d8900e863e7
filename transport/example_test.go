package transport_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/securedeviceaccess/sda/transport"
)

// A request and its response over an in-memory pipe.
func ExamplePipe() {
	technician, device := transport.Pipe()
	defer technician.Close()
	defer device.Close()
	ctx := context.Background()

	go func() {
		req, err := device.Receive(ctx)
		if err != nil {
			return
		}
		device.Send(ctx, append([]byte("ack: "), req...))
	}()

	if err := technician.Send(ctx, []byte("nonce please")); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := technician.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", resp)
	// Output: ack: nonce please
}

// SDA serial framing over a byte stream, here a net.Pipe standing in for a
// serial port. The raw bytes on the wire are shown.
func ExampleNewStreamConn() {
	port, wire := net.Pipe()
	conn, err := transport.NewStreamConn(port, &transport.Options{Framing: transport.FramingSDA})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	go conn.Send(context.Background(), []byte{0x81, 0x01}) // a v1 nonce request
	frame := make([]byte, 8+4+2+32)
	if _, err := io.ReadFull(wire, frame); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("magic %q\nlength % x\nmessage % x\nsha-256 % x...\n", frame[:8], frame[8:12], frame[12:14], frame[14:18])
	// Output:
	// magic "mbeddbap"
	// length 00 00 00 02
	// message 81 01
	// sha-256 ac 38 78 3f...
}

// A message larger than the MTU of a BLE-like link, fragmented by one end
// and reassembled by the other, in the format of the original SDA BLE
// example.
func ExampleNewFragmentConn() {
	phone, board := transport.PacketPipe(20) // BLE's default ATT_MTU of 23, less 3
	technician, err := transport.NewFragmentConn(phone, &transport.FragmentOptions{Format: transport.FragmentCompatTechnician})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer technician.Close()
	device, err := transport.NewFragmentConn(board, &transport.FragmentOptions{Format: transport.FragmentCompatDevice})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer device.Close()
	ctx := context.Background()

	msg := make([]byte, 500)
	go technician.Send(ctx, msg)
	got, err := device.Receive(ctx)
	fmt.Println(len(got), err)
	// Output: 500 <nil>
}

// A device listening on TCP and a technician dialing it, with length-prefixed
// framing.
func ExampleListen() {
	ctx := context.Background()
	opts := &transport.Options{Framing: transport.FramingLength, MaxMessageSize: 2048}
	l, err := transport.Listen(ctx, "127.0.0.1:0", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		if m, err := c.Receive(ctx); err == nil {
			c.Send(ctx, m)
		}
	}()

	c, err := transport.Dial(ctx, l.Addr().String(), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Send(ctx, []byte("echo"))
	m, err := c.Receive(ctx)
	fmt.Printf("%s %v\n", m, err)
	// Output: echo <nil>
}
