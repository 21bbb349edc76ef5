//go:build !unix

package fsutil

import "io/fs"

// ProcessAlive cannot tell here, so nothing counts as abandoned.
func ProcessAlive(int) bool { return true }

func ownedByMe(fs.FileInfo) bool { return true }
