package egress_test

import (
	"fmt"
	"net/url"

	"github.com/berth-dev/berth/internal/egress"
)

func ExamplePolicy_AllowURL() {
	p, err := egress.ParsePolicy([]string{"hooks.example.com", "*.scanner.example:8443", "10.20.0.0/16"})
	if err != nil {
		panic(err)
	}
	for _, s := range []string{"https://hooks.example.com/berth", "https://eu.scanner.example:8443/scan", "https://10.20.1.5/", "https://169.254.169.254/latest/meta-data"} {
		u, _ := url.Parse(s)
		fmt.Println(p.AllowURL(u))
	}
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// egress: destination 169.254.169.254:443 refused: the address is not on the egress allowlist
}
