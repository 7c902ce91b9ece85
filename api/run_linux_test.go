package api

import (
	"errors"
	"net"
	"os"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// fill sets every field reachable from v to a value other than its zero,
// so that a field a JSON round trip drops shows.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
	}
}

// What the daemon hands a standby arrives whole: every field of the run's
// options (one a JSON round trip dropped would be a request silently
// narrowed or widened), and the four descriptors.
func TestHandoffRoundTrip(t *testing.T) {
	var want handoff
	n := 0
	fill(reflect.ValueOf(&want).Elem(), &n)
	want.Options.Entrypoint = []string{} // an empty entrypoint is not none
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	defer a.Close()
	defer b.Close()
	var files []*os.File
	for range 4 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		files = append(files, w)
	}
	go sendHandoff(a, want, files)
	got, recv, err := recvHandoff(b)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(recv)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handoff changed on the way:\n got %+v\nwant %+v", got, want)
	}
	if len(recv) != 4 {
		t.Fatalf("%d descriptors, want 4", len(recv))
	}
	for i, f := range recv {
		var st1, st2 unix.Stat_t
		unix.Fstat(int(f.Fd()), &st1)
		unix.Fstat(int(files[i].Fd()), &st2)
		if st1.Ino != st2.Ino {
			t.Errorf("descriptor %d is not the one sent", i)
		}
	}
	// A socket that ends without a handoff is the daemon letting go.
	a.Close()
	// It is told apart from a failure, so that the standby ends quietly
	// (a stopped daemon's standbys printed "read unix @->@: EOF").
	if _, _, err := recvHandoff(b); !errors.Is(err, errEOF) {
		t.Errorf("recvHandoff on a socket closed without a handoff = %v, want errEOF", err)
	}
}
