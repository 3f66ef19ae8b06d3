package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/berth-dev/berth/internal/perimeter"
)

// perimeterListener restricts ln (the registry's or the metrics listener)
// to the clients of --allowed-clients (a comma-separated list of
// networks), when set: connections from anywhere else are reset before the
// TLS handshake, so they learn nothing about the service. Empty leaves ln
// as it is. On error, ln is closed.
func perimeterListener(ln net.Listener, networks string, log *slog.Logger) (net.Listener, error) {
	if networks == "" {
		return ln, nil
	}
	allowed, err := perimeter.ParsePrefixes(networks)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--allowed-clients: %w", err)
	}
	pl, err := perimeter.NewListener(ln, allowed, &perimeter.Options{Logger: log})
	if err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("registryd: trust perimeter: only these networks may connect", "allowed-clients", pl.String())
	return pl, nil
}
