// Command gatecheck brings up a simulated GKE Inference Gateway secured by a
// fake Apigee runtime, and checks that its security holds. See the README.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatecheck:", err)
		os.Exit(1)
	}
}
