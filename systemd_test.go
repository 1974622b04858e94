package chihaya

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/systemd"
)

// TestNotifyReadyAndStopping runs the daemon in-process as a Type=notify
// service: READY=1 once both listeners accept, STOPPING=1 at shutdown.
func TestNotifyReadyAndStopping(t *testing.T) {
	sock := notifySocket(t)
	cfg := loopbackConfig()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, func(a Addrs) { listening <- a.Public }) }()
	ready := expectNotify(t, sock, "READY=1")
	addr := <-listening
	if !strings.Contains(ready, "STATUS=serving announces on "+addr.String()) {
		t.Errorf("READY notification %q does not say where it serves", ready)
	}
	decodeBody(t, rawGet(t, addr.String(), "GET "+announceTarget+" HTTP/1.0\r\n\r\n")) // ready means serving
	cancel()
	expectNotify(t, sock, "STOPPING=1")
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// passedSocket is a listening socket as a socket unit holds it: the test
// keeps it open across daemon restarts.
func passedSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // f is a duplicate: the socket stays open, and listening
	t.Cleanup(func() { f.Close() })
	return f, addr
}

// passedUDPSocket opens a UDP socket on loopback, as systemd would for a
// ListenDatagram= line, and returns a file holding it, and a client
// socket connected to it.
func passedUDPSocket(t *testing.T) (*os.File, *net.UDPConn) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // f is a duplicate: the socket stays open
	client, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); client.Close() })
	return f, client
}

// TestSocketActivation starts the built binary as systemd would for the
// shipped units: chihaya.socket's stream and datagram sockets, both named
// "public", and chihaya-admin.socket's. It serves on them, not on the
// configured addresses (which cannot be bound here), and a restart on the
// same sockets loses no connection and no UDP request: those made while
// no daemon runs, or while the next one starts, are queued by the kernel
// and served by the next daemon.
func TestSocketActivation(t *testing.T) {
	sock := notifySocket(t)
	pubFile, pubAddr := passedSocket(t)
	admFile, admAddr := passedSocket(t)
	udpFile, udpClient := passedUDPSocket(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	// TEST-NET addresses: binding them fails, so serving proves the passed
	// sockets are used.
	os.WriteFile(cfgPath, []byte(`{"addr": "192.0.2.1:6881", "admin_addr": "192.0.2.1:6880", "udp_addr": "192.0.2.1:6881"}`), 0o644)

	activated := func() *process {
		t.Helper()
		// systemd sets LISTEN_PID to the service's pid after forking; a
		// shell that execs the daemon has the daemon's pid.
		cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, daemonBinary(t), "-config", cfgPath)
		cmd.ExtraFiles = []*os.File{pubFile, udpFile, admFile} // descriptors 3, 4 and 5
		cmd.Env = daemonEnv("LISTEN_FDS=3", "LISTEN_FDNAMES=public:public:admin")
		return startProcess(t, cmd)
	}

	first := activated()
	expectNotify(t, sock, "READY=1")
	m := decodeBody(t, rawGet(t, pubAddr, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if m["incomplete"] != int64(1) {
		t.Errorf("announce on the passed socket: %v", m)
	}
	if resp := rawGet(t, admAddr, "GET /check HTTP/1.0\r\n\r\n"); !strings.HasSuffix(resp, "STILL-ALIVE") {
		t.Errorf("/check on the passed admin socket: %q", resp)
	}
	udpConnect(t, udpClient)
	for _, want := range []string{
		"addr: serving on the socket systemd passed (" + pubAddr + ")",
		"udp_addr: serving on the socket systemd passed (" + udpClient.RemoteAddr().String() + ")",
	} {
		if !strings.Contains(first.log.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, first.log.String())
		}
	}
	first.shutdown(t, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")
	// No daemon runs: a UDP connect waits in the socket's buffer for the
	// next one.
	if _, err := udpClient.Write([]byte{0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 9, 9, 9, 9}); err != nil {
		t.Fatal(err)
	}

	// No daemon runs: the connection is queued, and so is its request.
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", pubAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connecting while the daemon restarts: %v", err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	var queued []net.Conn
	for i := range 2 {
		if i == 1 {
			second := activated() // the second one is made while it starts
			defer second.shutdown(t, syscall.SIGTERM)
		}
		c := dial()
		fmt.Fprintf(c, "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-TT0001-00000000000%d&port=700%d&uploaded=0&downloaded=0&left=0 HTTP/1.0\r\n\r\n", i, i)
		queued = append(queued, c)
	}
	for i, c := range queued {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if m := decodeBody(t, b.String()); m["complete"] == nil {
			t.Errorf("queued connection %d: %v", i, m)
		}
	}
	udpClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	if n, err := udpClient.Read(buf); err != nil || n != 16 || string(buf[4:8]) != "\x09\x09\x09\x09" {
		t.Errorf("the UDP connect sent while no daemon ran: answer %x, %v", buf[:n], err)
	}
	expectNotify(t, sock, "READY=1")
}

// unitFile reads a systemd unit into "Section.Key" → values.
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: line %q", path, line)
			}
			unit[section+"."+k] = append(unit[section+"."+k], v)
		}
	}
	return unit
}

// TestSystemdUnits checks the shipped units say what the daemon expects
// (Type=notify, sockets named public and admin, SIGHUP for reload) and
// the hardening, and has systemd-analyze verify them.
func TestSystemdUnits(t *testing.T) {
	svc := unitFile(t, "dist/systemd/chihaya.service")
	for key, want := range map[string]string{
		"Service.Type":                    "notify",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.Restart":                 "on-failure",
		"Service.DynamicUser":             "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.CapabilityBoundingSet":   "",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.LockPersonality":         "yes",
		"Service.SystemCallFilter":        "@system-service",
		"Unit.Requires":                   "chihaya.socket",
		"Service.ExecStart":               "/usr/local/bin/chihaya -config /etc/chihaya/config.json",
	} {
		if got := svc[key]; len(got) != 1 || got[0] != want {
			t.Errorf("chihaya.service: %s=%q, want %q", key, got, want)
		}
	}
	for file, want := range map[string]map[string]string{
		"chihaya.socket":       {"Socket.FileDescriptorName": systemd.Public, "Socket.ListenStream": "6881", "Socket.ListenDatagram": "6881", "Socket.Service": "chihaya.service"},
		"chihaya-admin.socket": {"Socket.FileDescriptorName": systemd.Admin, "Socket.ListenStream": "127.0.0.1:6880", "Socket.Service": "chihaya.service"},
	} {
		unit := unitFile(t, "dist/systemd/"+file)
		for key, value := range want {
			if got := unit[key]; len(got) != 1 || got[0] != value {
				t.Errorf("%s: %s=%q, want %q", file, key, got, value)
			}
		}
	}

	// systemd's own check, with ExecStart pointing at a built binary (it
	// wants the program to exist).
	analyze := needProgram(t, "systemd-analyze", "systemd")
	bin := daemonBinary(t)
	dir := t.TempDir()
	for _, f := range []string{"chihaya.service", "chihaya.socket", "chihaya-admin.socket"} {
		b, err := os.ReadFile("dist/systemd/" + f)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "ExecStart=/usr/local/bin/chihaya ", "ExecStart="+bin+" ", 1))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	cmd := exec.Command(analyze, "verify", "chihaya.service", "chihaya.socket", "chihaya-admin.socket")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// systemd's exposure score, 0 (locked down) to 10: the units ship at
	// 1.6; anything above 2 means hardening was lost.
	cmd = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", "chihaya.service")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
}

// TestSystemdSocketActivate has systemd's own socket activation tool
// (systemd-socket-activate) start the binary on two named sockets, as the
// shipped units do: the first connection starts it, and it serves both.
func TestSystemdSocketActivate(t *testing.T) {
	activate := needProgram(t, "systemd-socket-activate", "systemd")
	sock := notifySocket(t)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfgPath, []byte(`{"addr": "192.0.2.1:6881", "admin_addr": "192.0.2.1:6880", "udp_addr": ""}`), 0o644)
	pub, adm := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(activate, "-l", pub, "-l", adm, "--fdname=public:admin", "-E", "NOTIFY_SOCKET", daemonBinary(t), "-config", cfgPath)
	cmd.Env = daemonEnv()
	p := startProcess(t, cmd)
	p.waitLog(t, "Listening on "+adm, 1)
	// The first connection starts the daemon, which answers it.
	m := decodeBody(t, rawGet(t, pub, "GET "+announceTarget+" HTTP/1.0\r\n\r\n"))
	if m["incomplete"] != int64(1) {
		t.Errorf("announce: %v", m)
	}
	expectNotify(t, sock, "READY=1")
	if resp := rawGet(t, adm, "GET /check HTTP/1.0\r\n\r\n"); !strings.HasSuffix(resp, "STILL-ALIVE") {
		t.Errorf("/check on the admin socket: %q", resp)
	}
	p.shutdown(t, syscall.SIGTERM)
	expectNotify(t, sock, "STOPPING=1")
}
