package flags

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// VariantsDigest identifies a flag's type and variants: an environment's
// override of the flag (and a change request for one) holds while a new
// release keeps them the same.
func VariantsDigest(in Info) string {
	b, _ := json.Marshal(in.Variants) // map keys sorted
	sum := sha256.Sum256(append([]byte(in.Type.String()+":"), b...))
	return hex.EncodeToString(sum[:12])
}
