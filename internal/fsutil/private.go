package fsutil

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/envplane/envplane/internal/errs"
)

// CheckPrivate refuses a key file that group or others may access (any of
// the mode bits 077), as ssh does for private keys, saying which chmod
// fixes it. f is the file opened (not whatever path names by now); what
// names the key in the message ("master key", "age identity"). Windows has
// no such mode bits; there the check is skipped.
func CheckPrivate(f *os.File, path, what string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s file: %w", what, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return errs.E(errs.Invalid, "%s file %s is accessible by group or others (mode %04o); %s %s must be private to the server's user: run `chmod 600 %s`",
			what, path, perm, article(what), what, ShellQuote(path))
	}
	return nil
}

func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an"
	}
	return "a"
}

// ShellQuote quotes s for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:@%,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
