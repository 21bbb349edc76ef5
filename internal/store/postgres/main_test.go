package postgres_test

import (
	"testing"

	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// TestMain says which tests were skipped for want of PostgreSQL.
func TestMain(m *testing.M) { pgtest.Main(m) }
