package web_test

import (
	"testing"

	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
