#!/usr/bin/python3
"""A BitTorrent client for the end-to-end suite, on libtorrent-rasterbar
(Debian's python3-libtorrent): the client of qBittorrent and Deluge, and
one that sends a udp:// tracker URL's path as BEP 41 URL data, which
aria2 1.36 and Transmission 3.00 do not.

    libtorrent_client.py TORRENT DIR PORT

Seeds TORRENT from DIR (when the file there is complete) or downloads it
into DIR, listening on 127.0.0.1:PORT only, until SIGINT or SIGTERM; then
it sends `stopped` to the tracker and exits 0. DHT, local peer discovery,
UPnP, NAT-PMP and uTP are off (and PEX does not run on private torrents).
It prints a status line a second and every tracker reply or error.
"""

import signal
import sys
import time

import libtorrent as lt


def main(argv):
    torrent, save, port = argv[1], argv[2], int(argv[3])
    s = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        # Both clients of a case are on 127.0.0.1.
        "allow_multiple_connections_per_ip": True,
        # The tracker is on 127.0.0.1 by design.
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    h = s.add_torrent(atp)

    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    last = 0.0
    while not stop:
        s.wait_for_alert(250)
        for a in s.pop_alerts():
            if isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert, lt.tracker_warning_alert)):
                print("tracker:", a.message(), flush=True)
        if time.monotonic() - last >= 1:
            last = time.monotonic()
            st = h.status()
            print("status: %s %.1f%% peers %d payload up %d down %d" % (
                st.state, st.progress * 100, st.num_peers,
                st.total_payload_upload, st.total_payload_download), flush=True)

    # Pausing sends `stopped` to the tracker; wait for its answer (or a
    # few seconds) before the session goes.
    h.pause()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s.wait_for_alert(250)
        done = False
        for a in s.pop_alerts():
            if isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert, lt.tracker_warning_alert)):
                print("tracker:", a.message(), flush=True)
            if isinstance(a, lt.torrent_paused_alert):
                print("paused", flush=True)
            if isinstance(a, lt.tracker_reply_alert) or isinstance(a, lt.tracker_error_alert):
                done = True
        if done:
            break
    st = h.status()
    print("stopped: payload up %d down %d" % (st.total_payload_upload, st.total_payload_download), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
