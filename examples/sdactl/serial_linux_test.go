package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// ioctl runs an ioctl on f without switching it to blocking mode (as
// f.Fd() would), so that deadlines keep working on it.
func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// openPTY returns the master of a new pseudo-terminal and the path of its
// slave, which is set to raw mode and kept open until the test ends.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	var n uint32
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Skipf("ptsname: %v", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open %s: %v", path, err)
	}
	t.Cleanup(func() { slave.Close() })
	// cfmakeraw: no echo, no line editing, no translation, 8-bit bytes.
	var tio syscall.Termios
	if err := ioctl(slave, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	tio.Oflag &^= syscall.OPOST
	tio.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	tio.Cflag &^= syscall.CSIZE | syscall.PARENB
	tio.Cflag |= syscall.CS8
	tio.Cc[syscall.VMIN], tio.Cc[syscall.VTIME] = 1, 0
	if err := ioctl(slave, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return master, path
}

// TestCallSerial calls a device on the other end of a pseudo-terminal, as
// on a serial line: sdactl opens the path and speaks the SDA serial
// framing.
func TestCallSerial(t *testing.T) {
	master, path := openPTY(t)
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.pem", "-pub", "anchor.pub.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.pem")
	ok(t, dir, "token", "issue", "-key", "anchor.pem", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.pem", "-o", "t.token")

	// The device, in this process, on the master side.
	anchor, err := trust.ParsePEM(readFile(t, filepath.Join(dir, "anchor.pub.pem")))
	if err != nil {
		t.Fatal(err)
	}
	anchors, _ := trust.NewMemoryStore(*anchor)
	id := token.Identity{Endpoint: "hvac-1"}
	reg, _, err := deviceOperations(id, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var decisions []device.Decision
	agent, err := device.New(device.Config{Identity: id, Anchors: anchors, Operations: reg,
		OnDecision: func(d device.Decision) { mu.Lock(); decisions = append(decisions, d); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := transport.NewStreamConn(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Serve(ctx, conn) // ends when the test cancels ctx or the line fails
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-done
	})

	r := ok(t, dir, "call", "-token", "t.token", "-key", "tech.pem", "-timeout", "20s", path, "read-data")
	wantContains(t, "serial call", r.stdout, "status: success\n", `"endpoint":"hvac-1"`)
	r = expect(t, 1, dir, "", "call", "-token", "t.token", "-key", "tech.pem", "-timeout", "20s", path, "configure")
	wantContains(t, "serial call", r.stdout, "status: access denied\n")
	mu.Lock()
	defer mu.Unlock()
	if len(decisions) != 4 || !decisions[1].Allowed() || decisions[3].Check != device.CheckScope {
		t.Fatalf("device decisions: %+v", decisions)
	}
}
