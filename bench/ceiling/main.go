// Command ceiling is the speed limit of a tracker built on net/http: it
// answers every announce with the same compact 50-peer body and does no
// tracker work at all (it only checks that the query has a 20-byte
// info_hash). The benchmark (bench/run, CEILING=1) times it beside the
// tracker, so that the tracker's own cost shows as a ratio.
//
//	ceiling -addr 127.0.0.1:6969
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
)

// body is a compact announce answer with 50 peers.
var body = fmt.Appendf(nil, "d8:completei10e10:incompletei40e8:intervali1800e12:min intervali900e5:peers%d:%se", 50*6, make([]byte, 50*6))

func handler(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query().Get("info_hash")) != 20 {
		w.Write([]byte("d14:failure reason17:invalid info_hashe"))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(body)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6969", "loopback address to listen on")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil || !ap.Addr().IsLoopback() {
		log.Fatalf("ceiling: -addr %q: want a loopback ip:port", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal("ceiling: ", err)
	}
	http.HandleFunc("/announce", handler)
	log.Fatal(http.Serve(ln, nil))
}
