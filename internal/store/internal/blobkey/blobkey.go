// Package blobkey names stored file contents: release files are kept once
// per content in a blobs table, keyed by the hex SHA-256 of the bytes. This
// is addressing inside the stores (both backends and their migrations key
// blobs the same way), not a rule about releases.
package blobkey

import (
	"crypto/sha256"
	"encoding/hex"
)

// Of is the key of content.
func Of(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}
