// Package systemd speaks the two parts of systemd's service protocol the
// daemon needs, without linking a systemd library:
//
//   - readiness notification (sd_notify(3)): Notify sends "READY=1",
//     "RELOADING=1", "STOPPING=1" and the like to the datagram socket
//     named by $NOTIFY_SOCKET, which a Type=notify service gets;
//   - socket activation (sd_listen_fds(3)): Listeners takes the listening
//     sockets a .socket unit passed as file descriptors 3, 4, ..., named
//     by FileDescriptorName= ("public", "admin").
//
// Both do nothing outside systemd: without $NOTIFY_SOCKET Notify sends
// nothing, and without $LISTEN_PID naming this process Listeners returns
// no listeners.
package systemd
