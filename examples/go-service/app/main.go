// Command hello-service is the program examples/go-service compiles.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "", "serve the greeting on this address instead of printing it")
	flag.Parse()
	const greeting = "hello from a Go service in a scratch image"
	if *listen == "" {
		fmt.Println(greeting)
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, greeting) })
	log.Fatal(http.ListenAndServe(*listen, nil))
}
