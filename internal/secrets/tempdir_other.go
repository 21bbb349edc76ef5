//go:build !unix

package secrets

import "io/fs"

// processAlive cannot tell here, so nothing counts as abandoned.
func processAlive(int) bool { return true }

func ownedByMe(fs.FileInfo) bool { return true }
