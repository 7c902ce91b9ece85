package volume

import (
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion is the version of the record format this code writes. A
// record of any other version is refused rather than misread.
const recordVersion = 1

// record is the value stored in meta.db for one volume, keyed by its name.
type record struct {
	V       int       `json:"v"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Sparse  bool      `json:"sparse,omitempty"` // made by CreateSparse; absent in records of Oaks that made only sparse images
	Created time.Time `json:"created"`
	Owner   *Owner    `json:"owner,omitempty"` // its root directory's owner, if given at creation
}

func (r *record) encode() ([]byte, error) {
	return json.Marshal(r)
}

// decodeRecord parses the record stored under key and checks that it is
// one this store could have written for that key.
func decodeRecord(key, val []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(val, &r); err != nil {
		return nil, fmt.Errorf("record %q: %w", key, err)
	}
	switch {
	case r.V != recordVersion:
		return nil, fmt.Errorf("record %q: unknown format version %d", key, r.V)
	case r.Name != string(key) || !ValidName(r.Name):
		return nil, fmt.Errorf("record %q: names volume %q", key, r.Name)
	case r.Size < MinSize || r.Size > MaxSize:
		return nil, fmt.Errorf("record %q: size %d out of range", key, r.Size)
	}
	return &r, nil
}
