// Command gohttp is the corpus's static Go server: net/http on $PORT
// (8080), counting hits in $DATA/hits, reporting the GOMAXPROCS the runtime
// chose (from the container's CPU limit, since Go 1.25).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	dir := os.Getenv("DATA")
	if dir == "" {
		dir = "/data"
	}
	file := filepath.Join(dir, "hits")
	var mu sync.Mutex
	hits := 0
	if b, err := os.ReadFile(file); err == nil {
		hits, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	log.Printf("GOMAXPROCS=%d NumCPU=%d", runtime.GOMAXPROCS(0), runtime.NumCPU())
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/hit" {
			hits++
			if err := os.WriteFile(file, []byte(strconv.Itoa(hits)), 0o644); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprintf(w, "hits=%d gomaxprocs=%d numcpu=%d\n", hits, runtime.GOMAXPROCS(0), runtime.NumCPU())
	})
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
