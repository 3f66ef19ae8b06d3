package perimeter_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/perimeter"
)

func TestParsePrefixes(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: " 127.0.0.2 , ::1", want: "127.0.0.2/32,::1/128"},
		{in: "192.168.1.7/24", want: "192.168.1.0/24"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "", err: true},
		{in: " , ", err: true},
		{in: "10.0.0.0/33", err: true},
		{in: "example.com", err: true},
	} {
		got, err := perimeter.ParsePrefixes(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParsePrefixes(%q): err %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		s := ""
		for i, p := range got {
			if i > 0 {
				s += ","
			}
			s += p.String()
		}
		if s != tc.want {
			t.Errorf("ParsePrefixes(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

// dialFrom connects to addr from the loopback address src and returns
// what the server sent before closing, and the read error.
func dialFrom(t *testing.T, src, addr string) ([]byte, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil, err // reset before connect returned
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(c)
}

func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := perimeter.ParsePrefixes("127.0.0.2/32")
	ln, err := perimeter.NewListener(inner, allowed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the client's line first: closing with unread data
			// would reset the connection.
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write([]byte("served"))
			_ = c.Close()
		}
	}()
	if b, err := dialFrom(t, "127.0.0.2", inner.Addr().String()); string(b) != "served" || err != nil {
		t.Errorf("from inside: %q %v, want served", b, err)
	}
	b, err := dialFrom(t, "127.0.0.3", inner.Addr().String())
	var ne net.Error
	// Nothing arrives, and at once: a reset, or an end of stream when the
	// client's write already consumed the reset.
	if len(b) != 0 || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("from outside: %q %v, want nothing, at once", b, err)
	}
	for deadline := time.Now().Add(2 * time.Second); ln.Rejected() != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if ln.Rejected() != 1 {
		t.Errorf("Rejected() = %d, want 1", ln.Rejected())
	}
	if !ln.Allows(netip.MustParseAddr("::ffff:127.0.0.2")) {
		t.Error("a 4-in-6 address inside the perimeter is refused")
	}
}

func TestNewListenerNeedsNetworks(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if _, err := perimeter.NewListener(inner, nil, nil); err == nil {
		t.Error("NewListener with no network succeeded")
	}
}
