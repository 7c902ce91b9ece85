//go:build linux

package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/oak-engine/oak/storage/metadb"
)

const (
	lockName  = "lock"
	dbName    = "meta.db"
	volsDir   = "vols"
	tmpDir    = "tmp"
	imageName = "disk.img"
)

var bucketName = []byte("volumes")

// Store is a volume store rooted at one directory. Several Oak processes
// may use the same root at once: every operation that reads or changes it
// holds an exclusive flock(2) on ROOT/lock, and meta.db is opened only for
// the length of one operation. A Store is safe for concurrent use.
type Store struct {
	dbPath string // the bbolt file holding the records
	root   string

	// crash, when set (tests only), is called at each point where a crash
	// leaves a distinct state on disk; the test helper kills itself there.
	crash func(point string)
}

// Open opens the store rooted at root, creating it if needed, and repairs
// what interrupted operations left behind (see Repair). Volumes whose image
// is missing do not make Open fail; Check reports them.
func Open(root string) (*Store, error) {
	return OpenDB(root, "")
}

// OpenDB is Open with the records kept in the bbolt file db (shared with
// other stores of the same state root, each in its own bucket); "" means
// root/meta.db.
func OpenDB(root, db string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	if db == "" {
		db = filepath.Join(abs, dbName)
	}
	s := &Store{root: abs, dbPath: db}
	for _, d := range []string{abs, s.path(volsDir), s.path(tmpDir)} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("volume store %s: %w", root, err)
		}
	}
	if err := syncDir(abs); err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	defer unlock()
	err = s.update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	if _, err := s.repairLocked(); err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	return s, nil
}

// Root returns the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) imagePath(name string) string { return s.path(volsDir, name, imageName) }

func (s *Store) hook(point string) {
	if s.crash != nil {
		s.crash(point)
	}
}

// lock takes the store's exclusive lock. flock(2) locks belong to the open
// file description, so two goroutines of one process exclude each other
// exactly as two processes do; the kernel drops the lock when its holder
// dies, even by SIGKILL.
func (s *Store) lock() (unlock func(), err error) {
	fd, err := unix.Open(s.path(lockName), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", s.path(lockName), err)
	}
	return func() { unix.Close(fd) }, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// db opens meta.db. Callers hold the store lock, so bbolt's own flock on
// the file is never contended by Oak; the timeout only guards against a
// foreign program holding it.
func (s *Store) db() (*bolt.DB, error) {
	db, err := metadb.Open(s.dbPath, false, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.dbPath, cerr)
	}
	return err
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	err = db.View(fn)
	db.Close()
	return err
}

// get reads the record of name; nil when there is none.
func (s *Store) get(name string) (*record, error) {
	var r *record
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketName).Get([]byte(name))
		if v == nil {
			return nil
		}
		var err error
		r, err = decodeRecord([]byte(name), v)
		return err
	})
	return r, err
}

func (s *Store) all() ([]*record, error) {
	var rs []*record
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			rs = append(rs, r)
			return nil
		})
	})
	return rs, err
}

// Create makes a volume of exactly size bytes named name, with all of
// its size reserved on the host, and returns it. It refuses an invalid name
// (ErrBadName), a size outside [MinSize, MaxSize] (ErrBadSize), a name that
// is taken (ErrExists) and a size the host file system cannot reserve now
// (ErrNoSpace, naming the size and the free space).
//
// The image is built, reserved and synced in a private directory under
// tmp/ (which Repair removes if Create dies, also in the middle of the
// reservation), renamed into vols/, and the volume exists from the moment
// its record is committed to meta.db. mkfs and the reservation run without
// the store lock, so other operations go on meanwhile; two Creates of one
// name race and the second to commit gets ErrExists.
func (s *Store) Create(name string, size int64) (*Volume, error) {
	return s.CreateWith(name, size, Options{})
}

// CreateSparse is Create without the reservation: the image takes host
// space only as the volume's file system writes to it, so volumes may
// promise more than the host has. If the host file system fills, writes
// to the volume fail below its file system, ext4 aborts its journal and
// the volume turns read-only until it is repaired with e2fsck: use it only
// where the host's free space is watched.
func (s *Store) CreateSparse(name string, size int64) (*Volume, error) {
	return s.CreateWith(name, size, Options{Sparse: true})
}

// CreateWith is Create (or CreateSparse) with options.
func (s *Store) CreateWith(name string, size int64, o Options) (*Volume, error) {
	const op = "create"
	sparse := o.Sparse
	fail := func(err error) (*Volume, error) { return nil, &Error{Op: op, Volume: name, Err: err} }
	if o.Owner != nil && (o.Owner.UID > 65535 || o.Owner.GID > 65535) {
		return fail(fmt.Errorf("owner %d:%d is outside a container's ids 0..65535", o.Owner.UID, o.Owner.GID))
	}
	if err := CheckName(op, name); err != nil {
		return nil, err
	}
	if size < MinSize || size > MaxSize {
		return fail(fmt.Errorf("%w (asked for %d)", ErrBadSize, size))
	}
	if !sparse {
		// Refuse at once what cannot fit; the reservation below is what
		// actually decides (the free space may shrink meanwhile).
		if free, err := freeSpace(s.root); err != nil {
			return fail(err)
		} else if free < size {
			return fail(s.noSpace(size, free))
		}
	}

	// Fail fast on a taken name, and make the private directory while
	// holding the store lock, locked, so that no Repair sees it unlocked.
	unlock, err := s.lock()
	if err != nil {
		return fail(err)
	}
	taken, err := s.taken(name)
	if err != nil || taken {
		unlock()
		if err == nil {
			err = ErrExists
		}
		return fail(err)
	}
	dir, dirLock, err := s.newTemp()
	unlock()
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dirLock)
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(dir)
		}
	}()
	s.hook("tmp")

	img := filepath.Join(dir, imageName)
	if err := makeImage(img, size, !sparse, o.Owner, s.hook); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			free, _ := freeSpace(s.root)
			return fail(s.noSpace(size, free))
		}
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	s.hook("synced")

	unlock, err = s.lock()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	taken, err = s.taken(name)
	if err != nil || taken {
		if err == nil {
			err = ErrExists
		}
		return fail(err)
	}
	final := s.path(volsDir, name)
	if err := os.Rename(dir, final); err != nil {
		return fail(err)
	}
	// The rename must be durable before the record is: a record must never
	// outlive its directory, not even across a host crash.
	if err := syncDir(s.path(volsDir)); err != nil {
		os.Rename(final, dir)
		return fail(err)
	}
	syncDir(s.path(tmpDir)) // only tidies: a lost removal from tmp/ leaves nothing Repair does not handle
	s.hook("renamed")

	r := &record{V: recordVersion, Name: name, Size: size, Sparse: sparse, Created: time.Now().UTC(), Owner: o.Owner}
	val, err := r.encode()
	if err != nil {
		os.Rename(final, dir)
		return fail(err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if b.Get([]byte(name)) != nil {
			return ErrExists // cannot happen under the lock; never overwrite
		}
		return b.Put([]byte(name), val)
	})
	if err != nil {
		// Not committed: give the directory back to the deferred cleanup
		// (if this rename fails too, Repair removes the orphan).
		os.Rename(final, dir)
		return fail(err)
	}
	committed = true
	s.hook("committed")
	return s.describe(r, nil)
}

// taken reports whether name has a record or a directory. Callers hold the
// store lock. A directory without a record is the leftover of a crash that
// Repair removes; until then the name stays taken.
func (s *Store) taken(name string) (bool, error) {
	r, err := s.get(name)
	if err != nil || r != nil {
		return r != nil, err
	}
	_, err = os.Lstat(s.path(volsDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// newTemp makes a fresh directory under tmp/ and returns it with an open,
// flock'ed descriptor on it: Repair skips a locked directory, and the lock
// vanishes with its process, however that process dies.
func (s *Store) newTemp() (string, int, error) {
	dir, err := os.MkdirTemp(s.path(tmpDir), "")
	if err != nil {
		return "", -1, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		os.Remove(dir)
		return "", -1, fmt.Errorf("lock %s: %w", dir, err)
	}
	return dir, fd, nil
}

// makeImage creates the image file of size bytes at path, puts an ext4
// file system on it and, if reserve is set, allocates all of it on the
// host; all durably. The reservation comes after mkfs, which discards
// (punches holes in) the whole image.
func makeImage(path string, size int64, reserve bool, owner *Owner, hook func(string)) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	hook("image")
	if err := mkfs(path, owner); err != nil {
		return err
	}
	hook("mkfs")
	if reserve {
		// In two halves only so that a test can crash in the middle of the
		// reservation: a killed Create leaves a partly allocated image in
		// tmp/, which Repair removes like any other.
		if err := reserveImage(f, 0, size/2); err != nil {
			return err
		}
		hook("half-reserved")
		if err := reserveImage(f, size/2, size-size/2); err != nil {
			return err
		}
		hook("reserved")
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// reserveImage allocates every block of the image f from off for n bytes
// that is not allocated yet (fallocate mode 0: the file system's blocks
// are kept, holes become unwritten extents that read as zeroes). From then
// on writes there need no new host space, so the host filling up cannot
// fail them. It fails with ENOSPC, leaving part of the range allocated,
// when the host has not enough room.
func reserveImage(f *os.File, off, n int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, off, n)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP:
			return fmt.Errorf("reserve %s: the host file system cannot reserve space (fallocate: %w); only a sparse volume can live here", f.Name(), err)
		}
		return fmt.Errorf("reserve %d bytes for %s: %w", n, f.Name(), err)
	}
}

// freeSpace returns the bytes an unprivileged user may still allocate on
// the file system holding dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// noSpace is the ErrNoSpace a Create of size bytes fails with when free
// bytes are left on the store's file system.
func (s *Store) noSpace(size, free int64) error {
	return fmt.Errorf("%w: the volume needs %s (%d bytes), %s is free in %s", ErrNoSpace, sizeString(size), size, sizeString(free), s.root)
}

// sizeString writes n bytes for a person: "100.0 MiB", "1.5 GiB".
func sizeString(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// mkfsArgs are the options every volume's file system is made with:
//
//	-t ext4        journalled: consistent after a crash of the host
//	-m 0           no blocks reserved for root: the volume's user is the container
//	root_owner     the root directory is 0:0 (mode 0755), or the owner asked
//	               for, whoever runs Oak; the container sees it through its
//	               id-mapped mount
//	lazy_*_init=0  no zeroing left for the kernel's ext4lazyinit thread after
//	               the first mount. On an image file mke2fs discards (punches
//	               holes), which reads back as zeroes, so this costs nothing and
//	               the image stays sparse (measured: 0.02 s for 100 GiB).
var mkfsArgs = []string{"-t", "ext4", "-q", "-F", "-m", "0"}

func mkfs(path string, owner *Owner) error {
	bin, err := lookSbin("mkfs.ext4")
	if err != nil {
		return err
	}
	o := Owner{}
	if owner != nil {
		o = *owner
	}
	ext := fmt.Sprintf("root_owner=%d:%d,lazy_itable_init=0,lazy_journal_init=0", o.UID, o.GID)
	cmd := exec.Command(bin, append(append([]string{}, mkfsArgs...), "-E", ext, path)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	if owner == nil {
		return nil // lost+found goes when the volume is first filled
	}
	// An owned volume is never filled: its root must start empty, as a
	// docker volume does (initdb refuses a data directory holding
	// lost+found). e2fsck makes lost+found again if it ever needs one.
	dbg, err := lookSbin("debugfs")
	if err != nil {
		return err
	}
	cmd = exec.Command(dbg, "-w", "-R", "rmdir lost+found", path)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: remove lost+found: %w: %s", dbg, err, bytes.TrimSpace(out))
	}
	return nil
}

// lookSbin finds a system program, also where PATH lacks the sbin
// directories.
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install e2fsprogs)", name)
}

// Attach returns a detached mount of the volume's file system (an
// fsmount(2) descriptor) with nosuid and nodev, and read-only if readOnly.
// The caller id-maps it (mount_setattr MOUNT_ATTR_IDMAP) and attaches it
// into a container (move_mount); when the last reference to the mount is
// gone (the descriptor closed, the container's mount namespace dead), the
// file system is unmounted and its loop device unbinds itself.
//
// Every attach of one volume shares one loop device and so one ext4
// superblock, whatever the mix of read-only and read-write: two loop
// devices over one image would be two ext4 instances writing the same
// blocks, which corrupts it. So Attach first looks for a loop device bound
// to the image (matched by st_dev and st_ino, not by path) and binds a new
// one only if there is none. Find-then-bind is a race between attaches;
// Attach holds the store lock across it (the engine also calls it under its
// global lock). A found device is held open before its binding is checked,
// which keeps autoclear from unbinding it until the mount holds it; if it
// unbound before that (its last user left between listing and opening),
// it reads as unbound and a new one is bound; if it vanishes later anyway,
// Attach starts over (at most three times).
//
// It refuses a name without a record (ErrNotFound) and a record without a
// matching image (ErrBroken).
func (s *Store) Attach(name string, readOnly bool) (*os.File, error) {
	const op = "attach"
	fail := func(err error) (*os.File, error) { return nil, &Error{Op: op, Volume: name, Err: err} }
	if err := CheckName(op, name); err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	r, err := s.get(name)
	if err != nil {
		return fail(err)
	}
	if r == nil {
		return fail(ErrNotFound)
	}
	img := s.imagePath(name)
	id, err := s.checkImage(r)
	if err != nil {
		return fail(err)
	}
	if !r.Sparse {
		if err := s.ensureReserved(r); err != nil {
			return fail(err)
		}
	}
	for attempt := 0; ; attempt++ {
		l, err := findLoop(id)
		if err != nil {
			return fail(err)
		}
		if l == nil {
			l, err = newLoop(img, id)
			if err != nil {
				return fail(err)
			}
		} else if l.info.Offset != 0 || l.info.Sizelimit != 0 {
			l.close()
			return fail(fmt.Errorf("%s is bound to the image with offset %d and size limit %d by someone else", l.path(), l.info.Offset, l.info.Sizelimit))
		} else if !readOnly && l.info.Flags&loFlagsReadOnly != 0 {
			l.close()
			return fail(fmt.Errorf("%s is bound to the image read-only by someone else", l.path()))
		}
		f, err := mountLoop(l, readOnly)
		l.close()
		if err == nil {
			return f, nil
		}
		if attempt < 2 && retryableAttach(err) {
			continue
		}
		return fail(err)
	}
}

// ensureReserved reserves the rest of the image of a volume that is not
// sparse but has fewer bytes allocated than its size: one made by an Oak
// that only made sparse images, or one whose blocks something punched out.
// A fully allocated image costs one stat.
func (s *Store) ensureReserved(r *record) error {
	img := s.imagePath(r.Name)
	var st unix.Stat_t
	if err := unix.Stat(img, &st); err != nil {
		return fmt.Errorf("stat %s: %w", img, err)
	}
	if st.Blocks*512 >= r.Size {
		return nil
	}
	f, err := os.OpenFile(img, os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := reserveImage(f, 0, r.Size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			free, _ := freeSpace(s.root)
			return s.noSpace(r.Size-st.Blocks*512, free)
		}
		return err
	}
	return f.Sync()
}

// checkImage returns the identity of the volume's image, or ErrBroken when
// it is missing or not the size of its record.
func (s *Store) checkImage(r *record) (fileID, error) {
	img := s.imagePath(r.Name)
	var st unix.Stat_t
	if err := unix.Lstat(img, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fileID{}, fmt.Errorf("%w: %s is missing", ErrBroken, img)
		}
		return fileID{}, fmt.Errorf("stat %s: %w", img, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != r.Size {
		return fileID{}, fmt.Errorf("%w: %s is not a regular file of %d bytes", ErrBroken, img, r.Size)
	}
	return statID(&st), nil
}

// Inspect describes the volume named name, including whether it is
// attached right now. A volume whose image is missing is returned with
// Missing set and no error.
func (s *Store) Inspect(name string) (*Volume, error) {
	const op = "inspect"
	if err := CheckName(op, name); err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, &Error{Op: op, Volume: name, Err: err}
	}
	defer unlock()
	r, err := s.get(name)
	if err == nil && r == nil {
		err = ErrNotFound
	}
	if err != nil {
		return nil, &Error{Op: op, Volume: name, Err: err}
	}
	loops, err := boundLoops()
	if err != nil {
		return nil, &Error{Op: op, Volume: name, Err: err}
	}
	v, err := s.describe(r, loops)
	if err != nil {
		return nil, &Error{Op: op, Volume: name, Err: err}
	}
	return v, nil
}

// List describes every volume, ordered by name.
func (s *Store) List() ([]*Volume, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, fmt.Errorf("volume list: %w", err)
	}
	defer unlock()
	rs, err := s.all()
	if err != nil {
		return nil, fmt.Errorf("volume list: %w", err)
	}
	loops, err := boundLoops()
	if err != nil {
		return nil, fmt.Errorf("volume list: %w", err)
	}
	vs := make([]*Volume, 0, len(rs))
	for _, r := range rs {
		v, err := s.describe(r, loops)
		if err != nil {
			return nil, fmt.Errorf("volume list: %q: %w", r.Name, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// describe turns a record into a Volume; loops (file → loop number) says
// which images are attached; nil means "don't look".
func (s *Store) describe(r *record, loops map[fileID]int) (*Volume, error) {
	v := &Volume{Name: r.Name, Size: r.Size, Sparse: r.Sparse, Created: r.Created, Owner: r.Owner}
	img := s.imagePath(r.Name)
	var st unix.Stat_t
	if err := unix.Lstat(img, &st); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("stat %s: %w", img, err)
		}
		v.Missing = true
		return v, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != r.Size {
		v.Missing = true
	}
	v.Allocated = st.Blocks * 512
	if n, ok := loops[statID(&st)]; ok {
		v.Device = loopPath(n)
	}
	return v, nil
}

// Remove deletes the volume named name and its data. It refuses a volume
// that is attached (ErrAttached, naming the loop device): its file system
// is mounted somewhere, by a container or by anything else that holds the
// descriptor Attach returned. A volume whose image is missing (ErrBroken)
// is removed.
//
// The record goes first, in one transaction, and the directory after; a
// crash in between leaves a directory without a record, which Repair
// removes.
func (s *Store) Remove(name string) error {
	const op = "remove"
	fail := func(err error) error { return &Error{Op: op, Volume: name, Err: err} }
	if err := CheckName(op, name); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	r, err := s.get(name)
	if err != nil {
		return fail(err)
	}
	if r == nil {
		return fail(ErrNotFound)
	}
	if n, err := s.attachedTo(name); err != nil {
		return fail(err)
	} else if n >= 0 {
		return fail(fmt.Errorf("%w (file system mounted from %s)", ErrAttached, loopPath(n)))
	}
	err = s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketName).Delete([]byte(name)) })
	if err != nil {
		return fail(err)
	}
	s.hook("remove-committed")
	// From here on the volume is gone; what follows only reclaims space,
	// and Repair finishes it if this process dies.
	dir := s.path(volsDir, name)
	if _, err := os.Lstat(dir); err != nil {
		return nil
	}
	trash, err := os.MkdirTemp(s.path(tmpDir), "rm-")
	if err != nil {
		return nil
	}
	if err := os.Rename(dir, filepath.Join(trash, name)); err != nil {
		os.RemoveAll(trash)
		return nil
	}
	syncDir(s.path(volsDir))
	s.hook("remove-renamed")
	os.RemoveAll(trash)
	return nil
}

// attachedTo returns the number of the loop device the volume's image is
// bound to, or -1. Callers hold the store lock.
func (s *Store) attachedTo(name string) (int, error) {
	var st unix.Stat_t
	img := s.imagePath(name)
	if err := unix.Lstat(img, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, nil
		}
		return -1, fmt.Errorf("stat %s: %w", img, err)
	}
	l, err := findLoop(statID(&st))
	if err != nil || l == nil {
		return -1, err
	}
	l.close()
	return l.num, nil
}

// Check repairs what interrupted operations left behind (see Repair) and
// returns an error naming every volume whose record has no matching image
// (each an *Error wrapping ErrBroken), or nil when the store is consistent.
func (s *Store) Check() error {
	rep, err := s.Repair()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range rep.Broken {
		errs = append(errs, &Error{Op: "check", Volume: name, Err: ErrBroken})
	}
	for _, k := range rep.Kept {
		errs = append(errs, fmt.Errorf("volume check: %s", k))
	}
	return errors.Join(errs...)
}

// Repair brings the store back to "a record exists iff its directory
// does": it removes every directory under tmp/ that no live operation holds
// (an interrupted Create or Remove), and every directory under vols/ that
// has no record (a Create that died before its commit, a Remove that died
// after). It never removes an image that is bound to a loop device; that is
// reported in Kept. Records without a matching image are reported in
// Broken and left for Remove.
func (s *Store) Repair() (Report, error) {
	unlock, err := s.lock()
	if err != nil {
		return Report{}, fmt.Errorf("volume check: %w", err)
	}
	defer unlock()
	return s.repairLocked()
}

func (s *Store) repairLocked() (Report, error) {
	var rep Report
	fail := func(err error) (Report, error) { return rep, fmt.Errorf("volume check: %w", err) }
	rs, err := s.all()
	if err != nil {
		return fail(err)
	}
	have := make(map[string]*record, len(rs))
	for _, r := range rs {
		have[r.Name] = r
	}

	ents, err := os.ReadDir(s.path(tmpDir))
	if err != nil {
		return fail(err)
	}
	for _, e := range ents {
		p := s.path(tmpDir, e.Name())
		if e.IsDir() {
			busy, err := lockedByOther(p)
			if err != nil {
				return fail(err)
			}
			if busy {
				continue // a Create in progress
			}
		}
		if err := os.RemoveAll(p); err != nil {
			return fail(err)
		}
		rep.Removed = append(rep.Removed, filepath.Join(tmpDir, e.Name()))
	}

	ents, err = os.ReadDir(s.path(volsDir))
	if err != nil {
		return fail(err)
	}
	for _, e := range ents {
		if have[e.Name()] != nil {
			continue
		}
		rel := filepath.Join(volsDir, e.Name())
		if ValidName(e.Name()) {
			if n, err := s.attachedTo(e.Name()); err != nil {
				return fail(err)
			} else if n >= 0 {
				rep.Kept = append(rep.Kept, fmt.Sprintf("%s has no record but is attached (%s)", rel, loopPath(n)))
				continue
			}
		}
		if err := os.RemoveAll(s.path(rel)); err != nil {
			return fail(err)
		}
		rep.Removed = append(rep.Removed, rel)
	}
	if len(rep.Removed) > 0 {
		syncDir(s.path(volsDir))
		syncDir(s.path(tmpDir))
	}

	for _, r := range rs {
		if _, err := s.checkImage(r); err != nil {
			if !errors.Is(err, ErrBroken) {
				return fail(err)
			}
			rep.Broken = append(rep.Broken, r.Name)
		}
	}
	sort.Strings(rep.Broken)
	return rep, nil
}

// lockedByOther reports whether some other open file description holds a
// flock on dir.
func lockedByOther(dir string) (bool, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return false, nil
		}
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	err = flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", dir, err)
	}
	return false, nil
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
