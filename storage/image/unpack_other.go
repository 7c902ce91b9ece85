//go:build !linux

package image

import "errors"

// newLayerWriter needs Linux: overlayfs whiteouts, openat without
// following links, syncfs.
func newLayerWriter(dir string) (layerWriter, error) {
	return nil, errors.New("unpacking image layers is only supported on Linux")
}
