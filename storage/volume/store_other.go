//go:build !linux

package volume

import "os"

// Store is a volume store. Volumes need Linux; elsewhere Open fails with
// ErrUnsupported.
type Store struct{}

// Open fails with ErrUnsupported: volumes need Linux.
func Open(root string) (*Store, error) { return nil, ErrUnsupported }

// OpenDB is Open with the records in the bbolt file db.
func OpenDB(root, db string) (*Store, error) { return nil, ErrUnsupported }

func (s *Store) Root() string                                    { return "" }
func (s *Store) Create(name string, size int64) (*Volume, error) { return nil, ErrUnsupported }
func (s *Store) CreateSparse(name string, size int64) (*Volume, error) {
	return nil, ErrUnsupported
}
func (s *Store) Attach(name string, readOnly bool) (*os.File, error) {
	return nil, ErrUnsupported
}
func (s *Store) Inspect(name string) (*Volume, error) { return nil, ErrUnsupported }
func (s *Store) List() ([]*Volume, error)             { return nil, ErrUnsupported }
func (s *Store) Remove(name string) error             { return ErrUnsupported }
func (s *Store) Check() error                         { return ErrUnsupported }
func (s *Store) Repair() (Report, error)              { return Report{}, ErrUnsupported }
