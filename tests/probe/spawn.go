//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// doSpawn speaks the daemon's API through the container's spawn
// capability ($OAK_SPAWN_FD, fd 3 by default): it opens a connection by
// sending one end of a fresh socketpair over the capability, sends
// METHOD PATH with BODY (JSON) and each -H NAME:VALUE header on the
// other, and prints "STATUS BODY" on one line. Without the capability it
// prints the errno of the send.
func doSpawn(args []string) error {
	var headers [][2]string
	for len(args) >= 2 && args[0] == "-H" {
		k, v, ok := strings.Cut(args[1], ":")
		if !ok {
			return fmt.Errorf("-H %q: want NAME:VALUE", args[1])
		}
		headers = append(headers, [2]string{k, v})
		args = args[2:]
	}
	if len(args) < 2 || len(args) > 3 {
		return fmt.Errorf("usage: spawn [-H NAME:VALUE]... METHOD PATH [BODY]")
	}
	fd := 3
	if v := os.Getenv("OAK_SPAWN_FD"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("OAK_SPAWN_FD=%q: %w", v, err)
		}
		fd = n
	}
	conn, err := spawnConn(fd)
	if err != nil {
		return err
	}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	var body io.Reader
	if len(args) == 3 {
		body = strings.NewReader(args[2])
	}
	req, err := http.NewRequest(args[0], "http://oak"+args[1], body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Println(resp.StatusCode, strings.Join(strings.Fields(string(b)), " "))
	return errInfo
}

// spawnConn opens one connection over the capability at fd.
func spawnConn(fd int) (net.Conn, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Sendmsg(fd, []byte{'c'}, unix.UnixRights(pair[1]), nil, 0)
	unix.Close(pair[1])
	if err != nil {
		unix.Close(pair[0])
		return nil, err
	}
	f := os.NewFile(uintptr(pair[0]), "spawn")
	defer f.Close()
	return net.FileConn(f)
}
