// Caddy with the layer4 app (caddy-l4) for TCP routing by SNI and by port.
// l4postgres brings the `postgres` matcher and the `postgres_tls` handler, which
// answers libpq's plaintext SSLRequest with 'S' so that the `tls` handler can
// then end TLS and route by SNI (agent/caddy.ts).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4/layer4"
	_ "github.com/mholt/caddy-l4/modules/l4postgres"
	_ "github.com/mholt/caddy-l4/modules/l4proxy"
	_ "github.com/mholt/caddy-l4/modules/l4tls"
)

func main() {
	caddycmd.Main()
}
