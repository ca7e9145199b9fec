package ports_test

import (
	"fmt"

	"github.com/planetlab/pl/internal/core/ports"
)

func ExampleParse() {
	ps, err := ports.Parse("8080, udp/5000-5010 TCP/443")
	if err != nil {
		panic(err)
	}
	fmt.Println(ports.Format(ps))
	_, err = ports.Parse("tcp/70000")
	fmt.Println(err)
	// Output:
	// tcp/443, tcp/8080, udp/5000-5010
	// port "tcp/70000": 70000 is out of range 1-65535
}
