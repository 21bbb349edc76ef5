package pgtest

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// skipped are the tests BaseURL skipped in this test binary.
var skipped struct {
	sync.Mutex
	names []string
}

func noteSkipped(name string) {
	skipped.Lock()
	defer skipped.Unlock()
	skipped.names = append(skipped.names, name)
}

// Main runs a package's tests (call it from TestMain) and then, when
// ENVPLANE_TEST_POSTGRES_URL is unset, prints one line naming the tests
// that were skipped for it and how to run them, so they do not pass
// unnoticed. go test shows it with -v, or when run in the package's
// directory.
func Main(m *testing.M) {
	code := m.Run()
	if os.Getenv(EnvURL) == "" {
		Report(os.Stdout)
	}
	os.Exit(code)
}

// Report writes the line Main prints, when any test was skipped.
func Report(w io.Writer) {
	skipped.Lock()
	names := append([]string(nil), skipped.names...)
	skipped.Unlock()
	if len(names) == 0 {
		return
	}
	const show = 5
	list := strings.Join(names[:min(len(names), show)], ", ")
	if len(names) > show {
		list += fmt.Sprintf(" and %d more", len(names)-show)
	}
	plural := "s"
	if len(names) == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "pgtest: skipped %d PostgreSQL test%s (%s): set %s=postgres://USER@HOST:5432/DB?sslmode=disable to run them\n",
		len(names), plural, list, EnvURL)
}
