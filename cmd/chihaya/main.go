// Command chihaya is the BitTorrent tracker daemon.
//
//	chihaya -config example.json
//
// See the README for the configuration keys. glog's flags (-v, -vmodule,
// -logtostderr, ...) control logging.
package main

import (
	"github.com/chihaya/chihaya"
	_ "github.com/chihaya/chihaya/backend/mysql"  // Gazelle sites: "backend": {"driver": "mysql"}
	_ "github.com/chihaya/chihaya/backend/unit3d" // UNIT3D sites: "backend": {"driver": "unit3d"}
	_ "github.com/chihaya/chihaya/tracker/redis"  // several trackers, one set of swarms: "tracker": {"driver": "redis"}
)

func main() { chihaya.Boot() }
