package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/fsutil"
	"github.com/envplane/envplane/internal/store"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// KeyFileName is the generated master key's file, next to the SQLite database.
const KeyFileName = "master.key"

// MasterKey wraps per-environment data keys. It prints, logs and formats as
// its ID only, so it cannot leak through fmt or slog by accident: Format
// answers every verb (Stringer alone is skipped for %d and the like), and
// the key material sits two pointers deep, because fmt cannot call methods
// on an unexported field and prints what one pointer there points to when a
// verb does not fit it (%s of a pointer shows the pointee); past a second
// pointer it prints an address only.
type MasterKey struct {
	m  *keyMaterial
	id string
}

type keyMaterial struct {
	raw  *[KeySize]byte
	aead cipher.AEAD
}

// NewMasterKey makes a master key of exactly KeySize bytes.
func NewMasterKey(b []byte) (*MasterKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("a master key is %d bytes, not %d", KeySize, len(b))
	}
	m := &keyMaterial{raw: new([KeySize]byte)}
	copy(m.raw[:], b)
	block, err := aes.NewCipher(m.raw[:])
	if err != nil {
		return nil, err
	}
	if m.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(m.raw[:])
	return &MasterKey{m: m, id: hex.EncodeToString(sum[:4])}, nil
}

// GenerateMasterKey makes a random master key from rnd (crypto/rand when nil).
func GenerateMasterKey(rnd io.Reader) (*MasterKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, KeySize)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("generate a master key: %w", err)
	}
	return NewMasterKey(b)
}

// ParseMasterKey reads a key written as base64 (standard or URL alphabet,
// padded or not, surrounding whitespace ignored). Errors never quote the text.
func ParseMasterKey(text string) (*MasterKey, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("the master key must be %d random bytes in base64 (e.g. `openssl rand -base64 32`); this one decodes to %d bytes", KeySize, len(b))
			}
			return NewMasterKey(b)
		}
	}
	return nil, fmt.Errorf("the master key is not valid base64: want %d random bytes in base64 (e.g. `openssl rand -base64 32`)", KeySize)
}

// ID is the first 8 hex digits of the key's SHA-256: enough to tell keys
// apart in rows, logs and audit entries, useless for recovering the key.
func (k *MasterKey) ID() string { return k.id }

// auditChainLabel names what the derived key is for; a new label would
// make a new, unrelated key.
const auditChainLabel = "envplane audit chain v1"

// AuditKey is the key of the keyed audit chain: HMAC-SHA256 of a fixed
// label under the master key. It reveals nothing about the master key, and
// only a holder of the master key can compute it (see audit.NewChain).
func (k *MasterKey) AuditKey() []byte {
	m := hmac.New(sha256.New, k.m.raw[:])
	m.Write([]byte(auditChainLabel))
	return m.Sum(nil)
}

// Encode is the key in base64, the form key files and ENVPLANE_MASTER_KEY hold.
func (k *MasterKey) Encode() string { return base64.StdEncoding.EncodeToString(k.m.raw[:]) }

func (k *MasterKey) aead() cipher.AEAD { return k.m.aead }

// String, GoString, Format and LogValue have value receivers so that a key,
// or a pointer to one, never formats as its bytes.
func (k MasterKey) String() string   { return "master key " + k.id }
func (k MasterKey) GoString() string { return k.String() }

// Format prints the key as String does, whatever the verb and flags.
func (k MasterKey) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(k.String()))
		return
	}
	io.WriteString(f, k.String())
}

// LogValue keeps slog from reflecting on the key's fields.
func (k MasterKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ReadKeyFile reads a base64 master key file. Like ssh with a private key,
// it refuses a file that group or others may read or write, saying which
// chmod to run.
func ReadKeyFile(path string) (*MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	defer f.Close()
	if err := fsutil.CheckPrivate(f, path, "master key"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	defer clear(b)
	k, err := ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// CreateKeyFile writes k to path (mode 0600), creating its directory
// (0700), and fails with fs.ErrExist when path exists. The key appears
// whole or not at all: it is written to a temporary file, synced, then
// hard-linked into place, which unlike rename never replaces a key
// another process wrote meanwhile.
func CreateKeyFile(path string, k *MasterKey) error {
	return writeKeyFile(path, k, false)
}

// ReplaceKeyFile atomically writes k to path (mode 0600), replacing it.
func ReplaceKeyFile(path string, k *MasterKey) error {
	return writeKeyFile(path, k, true)
}

func writeKeyFile(path string, k *MasterKey, replace bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data := []byte(k.Encode() + "\n")
	if replace {
		return fsutil.WriteFile(path, data, 0o600)
	}
	return fsutil.CreateFile(path, data, 0o600)
}

// Source says where the server's master key comes from. At most one of
// Value and File may be set.
type Source struct {
	Value string // ENVPLANE_MASTER_KEY: the key in base64
	File  string // --master-key-file or ENVPLANE_MASTER_KEY_FILE
	// DataDir, for the embedded SQLite database only, is its directory: with
	// neither Value nor File, the key is DataDir/master.key, generated on
	// first use. Empty means the key must be given (PostgreSQL: every
	// replica must use the same one, so none may invent it).
	DataDir string
	// Store, when set, stops generation over a database that already holds
	// data keys: those were wrapped by a key that has gone missing.
	Store store.Reader
	Rand  io.Reader
}

// Loaded is a master key and where it came from.
type Loaded struct {
	Key *MasterKey
	// From describes the source for messages: "ENVPLANE_MASTER_KEY" or a path.
	From string
	// Generated is true when this call created DataDir/master.key.
	Generated bool
}

// MissingKeyHelp says how to give the server a master key.
const MissingKeyHelp = "set ENVPLANE_MASTER_KEY to 32 random bytes in base64 (`openssl rand -base64 32`), " +
	"or pass --master-key-file FILE (or ENVPLANE_MASTER_KEY_FILE) naming a file that holds them"

// Load finds the master key as src says, generating it on the SQLite
// default when there is none yet.
func Load(ctx context.Context, src Source) (Loaded, error) {
	switch {
	case src.Value != "" && src.File != "":
		return Loaded{}, errors.New("master key: set ENVPLANE_MASTER_KEY or --master-key-file (ENVPLANE_MASTER_KEY_FILE), not both")
	case src.Value != "":
		k, err := ParseMasterKey(src.Value)
		if err != nil {
			return Loaded{}, fmt.Errorf("ENVPLANE_MASTER_KEY: %w", err)
		}
		return Loaded{Key: k, From: "ENVPLANE_MASTER_KEY"}, nil
	case src.File != "":
		k, err := ReadKeyFile(src.File)
		return Loaded{Key: k, From: src.File}, err
	case src.DataDir == "":
		return Loaded{}, errors.New("a master key is required with PostgreSQL, and every replica must use the same one: " + MissingKeyHelp)
	}
	path := filepath.Join(src.DataDir, KeyFileName)
	if k, err := ReadKeyFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return Loaded{Key: k, From: path}, err
	}
	if src.Store != nil {
		keys, err := src.Store.ListEnvKeys(ctx)
		if err != nil {
			return Loaded{}, fmt.Errorf("master key: %w", err)
		}
		if len(keys) > 0 {
			return Loaded{}, fmt.Errorf("master key: %s is missing, but the database holds secrets wrapped by master key %s: "+
				"restore that key file, or "+MissingKeyHelp, path, keys[0].MasterKeyID)
		}
	}
	k, err := GenerateMasterKey(src.Rand)
	if err != nil {
		return Loaded{}, err
	}
	if err := CreateKeyFile(path, k); errors.Is(err, fs.ErrExist) {
		// Another process generated it first: use theirs.
		k, err := ReadKeyFile(path)
		return Loaded{Key: k, From: path}, err
	} else if err != nil {
		return Loaded{}, fmt.Errorf("master key: write %s: %w", path, err)
	}
	return Loaded{Key: k, From: path, Generated: true}, nil
}
